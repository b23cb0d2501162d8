package worker

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/llmbatch/llmbatch/jobs"
)

// assembler rebuilds, from the chunks of a streamed completion, the body the
// same request would have got without "stream", so that the store, the
// export and parseResponse never need to know a response was streamed.
//
// It builds what the OpenAI Python SDK's stream accumulator builds from the
// same events (_accumulate_chunk and _convert_initial_chunk_into_snapshot in
// openai/lib/streaming/chat/_completions.py): each choice's message is its
// deltas merged (merge.go), beside the choice's other fields; the top-level
// fields are the chunks' own. Nothing a provider sends is dropped but the
// stream's own framing ("object" becomes the answer's, "delta" becomes
// "message", the index of a tool call and OpenAI's "obfuscation" padding go).
//
// Which value a field keeps, where the SDK and "the last value wins" differ:
//   - a top-level field keeps its first value that is neither null nor "",
//     as the SDK keeps the first chunk's (id, created, model and
//     system_fingerprint do not change within a stream, and a later chunk
//     that differs is more likely a proxy's than the model's); usage is the
//     last one sent, null aside;
//   - a choice's fields outside the delta keep their last non-null value:
//     the SDK keeps the first chunk's but for finish_reason, and would lose
//     vLLM's stop_reason, which only the finish chunk carries.
//
// Members we know come first, in the order of a non-streamed answer; the
// others follow in the order in which they first appeared.
type assembler struct {
	endpoint jobs.Endpoint
	top      []field         // top-level members but choices, in order of appearance
	usage    []byte          // the last usage that was not null
	choices  []indexedChoice // by index
	outputs  int
	err      *CallError // the first failure; Add and Result repeat it
	m        *merger    // during Add only, from mergers
	// topAt is, for each position of a member in the last chunk, the
	// index in top of the field it was (-1: none): a stream's chunks
	// repeat their members in the same order.
	topAt []int
}

// indexedChoice is a choice being accumulated and its index.
type indexedChoice struct {
	index int
	acc   *choiceAcc
}

// mergers lends Add the scratch slices it splits a chunk into: a thousand
// streams in flight then share a few sets rather than each keeping its own
// between events.
var mergers = sync.Pool{New: func() any { return new(merger) }}

// field is a member kept with its raw value.
type field struct {
	key string
	val []byte
}

// choiceAcc accumulates one choice index.
type choiceAcc struct {
	message  node // the deltas merged; an object once a delta came
	text     node // completions: the text chunks merged
	finish   string
	logprobs logprobsAcc
	other    []field // members we do not know, their last non-null value
	lastTool int     // for tool-call deltas without an index
	nextTool int
}

// newAssembler returns an assembler for a stream from endpoint.
func newAssembler(endpoint jobs.Endpoint) *assembler {
	return &assembler{endpoint: endpoint}
}

// Add takes the data of one event. It returns a *CallError for data that is
// not a JSON chunk (class bad_response) and for an error chunk
// ({"error": {...}}, classified by its code like an HTTP status); after an
// error every further call returns the same error.
func (a *assembler) Add(data []byte) error {
	if a.err != nil {
		return a.err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil // an empty data line carries nothing
	}
	a.m = mergers.Get().(*merger)
	defer func() {
		mergers.Put(a.m)
		a.m = nil
	}()
	ms, ok := a.m.split(data, 0)
	if !ok {
		return a.notAnObject(data)
	}
	for _, m := range ms {
		if string(m.key) == "error" && m.val[0] != 'n' {
			return a.fail(streamError(data))
		}
	}
	for at, m := range ms {
		var err *CallError
		switch string(m.key) {
		case "choices":
			err = a.addChoices(m.val)
		case "error", "obfuscation":
		default:
			a.addTop(m, at)
		}
		if err != nil {
			return a.fail(err)
		}
	}
	return nil
}

// notAnObject fails data that split refused: not JSON, or JSON that is not
// an object. A null chunk carries nothing, as encoding/json has it.
func (a *assembler) notAnObject(data []byte) error {
	var v json.RawMessage
	if err := json.Unmarshal(data, &v); err != nil {
		return a.fail(badResponse("bad stream chunk: %v", err))
	}
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	return a.fail(badResponse("bad stream chunk: not a JSON object"))
}

// Started reports whether any delta so far carried output (content,
// reasoning, text, a refusal or tool-call arguments): the moment the time
// to first token measures. A role-only first chunk does not count.
func (a *assembler) Started() bool { return a.outputs > 0 }

// Outputs counts the chunk choices so far that carried output; the stall
// guard watches it, so that keep-alives and empty chunks do not count as
// progress.
func (a *assembler) Outputs() int { return a.outputs }

func (a *assembler) fail(e *CallError) error {
	a.err = e
	return e
}

// The keys the assembled body is read by: a chunk's member whose key is
// one of these but for case (or escapes) would, kept beside the real one,
// be read in its place by encoding/json, which matches keys without regard
// to case, and the last one wins. No provider sends such a key; it is
// dropped.
var (
	chunkTopKeys    = []string{"id", "object", "created", "model", "system_fingerprint", "choices", "usage", "error"}
	chunkChoiceKeys = []string{"index", "message", "delta", "text", "finish_reason", "logprobs"}
)

// shadows reports whether m's key matches one of keys but for case. A
// plain ASCII key, every key a provider sends, is compared where it lies:
// this runs for most members of every chunk.
func shadows(m member, keys []string) bool {
	if !m.esc && !hasSpecial(m.key) {
		for _, k := range keys {
			if string(m.key) != k && foldEqual(m.key, k) {
				return true
			}
		}
		return false
	}
	key := keyString(m)
	for _, k := range keys {
		if key != k && strings.EqualFold(key, k) {
			return true
		}
	}
	return false
}

// addTop keeps a top-level member's first value that is neither null nor
// "" (usage: its last that is not null); at is its position in the chunk.
// A member whose key shadows one of ours is dropped.
func (a *assembler) addTop(m member, at int) {
	v := m.val
	if !m.esc && string(m.key) == "usage" {
		if v[0] != 'n' {
			a.usage = append(a.usage[:0], v...)
		}
		return
	}
	i := a.topField(m, at)
	if i < 0 {
		return
	}
	if f := &a.top[i]; v[0] != 'n' && (string(f.val) == "null" || string(f.val) == `""`) {
		f.val = append(f.val[:0], v...)
	}
}

// topField returns the index in top of the field m is, adding it with m's
// value when it is new, or -1 when m's key shadows one of ours. The field
// m's position held in the last chunk is tried first: a key kept there
// has passed shadows already.
func (a *assembler) topField(m member, at int) int {
	for len(a.topAt) <= at {
		a.topAt = append(a.topAt, -1)
	}
	if i := a.topAt[at]; i >= 0 && !m.esc && a.top[i].key == string(m.key) {
		return i
	}
	if shadows(m, chunkTopKeys) {
		return -1
	}
	i := fieldIndex(a.top, m)
	if i < 0 {
		i = len(a.top)
		a.top = append(a.top, field{key: keyString(m), val: bytes.Clone(m.val)})
	}
	a.topAt[at] = i
	return i
}

// findField returns the field named by m's key, or nil.
func findField(fields []field, m member) *field {
	if i := fieldIndex(fields, m); i >= 0 {
		return &fields[i]
	}
	return nil
}

// fieldIndex returns the index of the field named by m's key, or -1.
func fieldIndex(fields []field, m member) int {
	key := string(m.key) // compared without a copy when not escaped
	if m.esc {
		key = keyString(m)
	}
	for i := range fields {
		if fields[i].key == key {
			return i
		}
	}
	return -1
}

// addChoices merges the choices of a chunk.
func (a *assembler) addChoices(v []byte) *CallError {
	switch v[0] {
	case 'n':
		return nil
	case '[':
	default:
		return badResponse("bad stream chunk: choices is not an array")
	}
	for _, e := range a.m.elements(v, 1) {
		switch e[0] {
		case 'n':
			continue
		case '{':
		default:
			return badResponse("bad stream chunk: a choice is not an object")
		}
		if err := a.addChoice(e); err != nil {
			return err
		}
	}
	return nil
}

// addChoice merges one chunk choice into the choice of its index.
func (a *assembler) addChoice(e []byte) *CallError {
	ms, _ := a.m.split(e, 2)
	index := 0
	for _, m := range ms {
		if string(m.key) == "index" && m.val[0] != 'n' {
			i, ok := parseIndex(m.val)
			if !ok {
				return badResponse("bad stream chunk: a choice's index is not an integer")
			}
			index = i
		}
	}
	ch := a.choice(index)
	output := false
	for _, m := range ms {
		got, err := a.addChoiceMember(ch, m)
		if err != nil {
			return err
		}
		output = output || got
	}
	if output {
		a.outputs++
	}
	return nil
}

// choice returns the choice of index, adding it when it is new.
func (a *assembler) choice(index int) *choiceAcc {
	k, found := slices.BinarySearchFunc(a.choices, index, func(c indexedChoice, i int) int { return cmp.Compare(c.index, i) })
	if !found {
		a.choices = slices.Insert(a.choices, k, indexedChoice{index: index, acc: &choiceAcc{}})
	}
	return a.choices[k].acc
}

// addChoiceMember merges one member of a chunk choice and reports whether
// it carried output.
func (a *assembler) addChoiceMember(ch *choiceAcc, m member) (bool, *CallError) {
	v := m.val
	switch string(m.key) {
	case "index":
		return false, nil
	case "delta":
		return a.addDelta(ch, v)
	case "text":
		if v[0] == 'n' {
			return false, nil
		}
		if v[0] != '"' {
			return false, badResponse("bad stream chunk: text is not a string")
		}
		a.m.merge(&ch.text, "text", v, 3)
		return len(v) > 2, nil
	case "finish_reason":
		if v[0] != 'n' && v[0] != '"' {
			return false, badResponse("bad stream chunk: finish_reason is not a string")
		}
		if v[0] == '"' && len(v) > 2 {
			var sb strings.Builder
			appendString(&sb, v)
			ch.finish = sb.String()
		}
		return false, nil
	case "logprobs":
		ch.logprobs.add(v)
		return false, nil
	}
	if !shadows(m, chunkChoiceKeys) {
		ch.setOther(m)
	}
	return false, nil
}

// setOther keeps the last non-null value of a member we do not know.
func (ch *choiceAcc) setOther(m member) {
	f := findField(ch.other, m)
	if f == nil {
		ch.other = append(ch.other, field{key: keyString(m), val: bytes.Clone(m.val)})
		return
	}
	if m.val[0] != 'n' {
		f.val = append(f.val[:0], m.val...)
	}
}

// addDelta merges a delta into the choice's message and reports whether it
// carried text: content, reasoning (reasoning_content, or reasoning as vLLM
// and OpenRouter name it), a refusal or tool-call arguments. Any of them is
// progress for the stall guard.
func (a *assembler) addDelta(ch *choiceAcc, v []byte) (bool, *CallError) {
	switch v[0] {
	case 'n':
		return false, nil
	case '{':
	default:
		return false, badResponse("bad stream chunk: delta is not an object")
	}
	if ch.message.kind != nodeObject {
		ch.message = node{kind: nodeObject}
	}
	ms, _ := a.m.split(v, 3)
	output := false
	for _, m := range ms {
		c, key := ch.message.child(m)
		switch key {
		case "tool_calls":
			got, err := a.addToolCalls(ch, c, m.val)
			if err != nil {
				return false, err
			}
			output = output || got
			continue
		case "content", "reasoning_content", "reasoning", "refusal":
			output = output || (m.val[0] == '"' && len(m.val) > 2)
		}
		a.m.merge(c, key, m.val, 4)
	}
	return output, nil
}

// Result returns the assembled body and what parseResponse reads from it,
// so that a streamed and a plain answer are recorded alike. It fails (class
// bad_response, retryable) after a failed Add, when the stream carried no
// choice, or when a choice has no finish_reason: the stream ended early.
func (a *assembler) Result() (body []byte, res *jobs.Result, err error) {
	body, err = a.Body()
	if err != nil {
		return nil, nil, err
	}
	res, cerr := parseResponse(body)
	if cerr != nil {
		return nil, nil, cerr
	}
	return body, res, nil
}

// Body returns the assembled body with the same errors as Result, for a
// caller that parses it itself.
func (a *assembler) Body() ([]byte, error) {
	if a.err != nil {
		return nil, a.err
	}
	if len(a.choices) == 0 {
		return nil, badResponse("stream carried no choices")
	}
	for _, c := range a.choices {
		if c.acc.finish == "" {
			return nil, badResponse("stream ended before choice %d had a finish_reason", c.index)
		}
	}
	w := newJSONWriter(a.size())
	a.render(w)
	return w.bytes(), nil
}
