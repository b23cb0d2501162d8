package worker

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/llmbatch/llmbatch/jobs"
)

// assembler rebuilds, from the chunks of a streamed completion, the body the
// same request would have got without "stream", so that the store, the
// export and parseResponse never need to know a response was streamed.
type assembler struct {
	endpoint    jobs.Endpoint
	id, model   string
	created     json.RawMessage
	fingerprint json.RawMessage
	usage       json.RawMessage // from the last chunk that carried it
	choices     map[int]*choiceAcc
	outputs     int
	err         *CallError // the first failure; Add and Result repeat it
}

// choiceAcc accumulates the deltas of one choice index.
type choiceAcc struct {
	role                     string
	content, reasoning, text strings.Builder
	hasContent, hasReasoning bool
	finish                   string
	tools                    map[int]*toolAcc
	lastTool, nextTool       int
	logprobs                 logprobsAcc
}

// toolAcc accumulates one tool call of a choice.
type toolAcc struct {
	id, typ, name string
	args          strings.Builder
}

// chunk is the part of a chat.completion.chunk or streamed text_completion
// that the assembler reads.
type chunk struct {
	ID                string          `json:"id"`
	Created           json.RawMessage `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint json.RawMessage `json:"system_fingerprint"`
	Choices           []chunkChoice   `json:"choices"`
	Usage             json.RawMessage `json:"usage"`
	Error             json.RawMessage `json:"error"`
}

// chunkChoice is one choice of a chunk: a delta (chat) or text (completions).
type chunkChoice struct {
	Index int `json:"index"`
	Delta *struct {
		Role             *string         `json:"role"`
		Content          *string         `json:"content"`
		ReasoningContent *string         `json:"reasoning_content"`
		ToolCalls        []toolCallDelta `json:"tool_calls"`
	} `json:"delta"`
	Text         *string         `json:"text"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

// toolCallDelta is a piece of a tool call; arguments arrive in pieces.
type toolCallDelta struct {
	Index    *int   `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// newAssembler returns an assembler for a stream from endpoint.
func newAssembler(endpoint jobs.Endpoint) *assembler {
	return &assembler{endpoint: endpoint, choices: map[int]*choiceAcc{}}
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
	var c chunk
	if err := json.Unmarshal(data, &c); err != nil {
		return a.fail(badResponse("bad stream chunk: %v", err))
	}
	if present(c.Error) {
		return a.fail(streamError(data))
	}
	a.meta(&c)
	for i := range c.Choices {
		a.choice(c.Choices[i].Index).add(&c.Choices[i])
		if c.Choices[i].hasOutput() {
			a.outputs++
		}
	}
	if present(c.Usage) {
		a.usage = c.Usage
	}
	return nil
}

// Started reports whether any delta so far carried output (content,
// reasoning, text or tool-call arguments): the moment the time to first
// token measures. A role-only first chunk does not count.
func (a *assembler) Started() bool { return a.outputs > 0 }

// Outputs counts the chunk choices so far that carried output; the stall
// guard watches it, so that keep-alives and empty chunks do not count as
// progress.
func (a *assembler) Outputs() int { return a.outputs }

func (a *assembler) fail(e *CallError) error {
	a.err = e
	return e
}

func (a *assembler) meta(c *chunk) {
	a.id, a.model = cmp.Or(a.id, c.ID), cmp.Or(a.model, c.Model)
	if !present(a.created) && present(c.Created) {
		a.created = c.Created
	}
	if !present(a.fingerprint) && present(c.SystemFingerprint) {
		a.fingerprint = c.SystemFingerprint
	}
}

func (a *assembler) choice(i int) *choiceAcc {
	ch := a.choices[i]
	if ch == nil {
		ch = &choiceAcc{tools: map[int]*toolAcc{}}
		a.choices[i] = ch
	}
	return ch
}

// hasOutput reports whether c carries any text of the answer.
func (c *chunkChoice) hasOutput() bool {
	if nonEmpty(c.Text) {
		return true
	}
	d := c.Delta
	if d == nil {
		return false
	}
	for _, tc := range d.ToolCalls {
		if tc.Function.Arguments != "" {
			return true
		}
	}
	return nonEmpty(d.Content) || nonEmpty(d.ReasoningContent)
}

func nonEmpty(s *string) bool { return s != nil && *s != "" }

// add merges one chunk choice.
func (ch *choiceAcc) add(c *chunkChoice) {
	if d := c.Delta; d != nil {
		if d.Role != nil && *d.Role != "" {
			ch.role = *d.Role
		}
		ch.hasContent = appendDelta(&ch.content, d.Content) || ch.hasContent
		ch.hasReasoning = appendDelta(&ch.reasoning, d.ReasoningContent) || ch.hasReasoning
		for _, tc := range d.ToolCalls {
			ch.tool(tc)
		}
	}
	appendDelta(&ch.text, c.Text)
	ch.logprobs.add(c.Logprobs)
	if c.FinishReason != nil && *c.FinishReason != "" {
		ch.finish = *c.FinishReason
	}
}

// appendDelta appends s, if not null, and reports whether it was there.
func appendDelta(b *strings.Builder, s *string) bool {
	if s == nil {
		return false
	}
	b.WriteString(*s)
	return true
}

// tool merges a tool-call delta into the call of the same index.
func (ch *choiceAcc) tool(d toolCallDelta) {
	i := ch.toolIndex(d)
	t := ch.tools[i]
	if t == nil {
		t = &toolAcc{}
		ch.tools[i] = t
		ch.nextTool = max(ch.nextTool, i+1)
	}
	ch.lastTool = i
	if d.ID != "" {
		t.id = d.ID
	}
	if d.Type != "" {
		t.typ = d.Type
	}
	if d.Function.Name != "" {
		t.name = d.Function.Name
	}
	t.args.WriteString(d.Function.Arguments)
}

// toolIndex is the delta's index. Some providers leave it out: then a new
// id starts a new call and anything else continues the last one.
func (ch *choiceAcc) toolIndex(d toolCallDelta) int {
	if d.Index != nil {
		return *d.Index
	}
	last := ch.tools[ch.lastTool]
	if last == nil {
		return ch.nextTool
	}
	if d.ID != "" && last.id != "" && d.ID != last.id {
		return ch.nextTool
	}
	return ch.lastTool
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

// Body returns the assembled body with the same errors as Result. A caller
// that must redact the body before parsing it uses Body and parseResponse.
func (a *assembler) Body() ([]byte, error) {
	if a.err != nil {
		return nil, a.err
	}
	if len(a.choices) == 0 {
		return nil, badResponse("stream carried no choices")
	}
	out := completionOut{ID: a.id, Object: "chat.completion", Created: a.created, Model: a.model,
		SystemFingerprint: a.fingerprint, Usage: a.usage}
	if a.endpoint == jobs.EndpointCompletions {
		out.Object = "text_completion"
	}
	for _, i := range slices.Sorted(maps.Keys(a.choices)) {
		ch := a.choices[i]
		if ch.finish == "" {
			return nil, badResponse("stream ended before choice %d had a finish_reason", i)
		}
		out.Choices = append(out.Choices, ch.out(i, a.endpoint))
	}
	// Unlike json.Marshal, leave <, > and & alone: the model's text is
	// full of them and providers do not escape them either.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, badResponse("assemble stream: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// completionOut is the assembled body. Field order is the key order of the
// output, which follows the provider's non-streamed answers.
type completionOut struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           json.RawMessage `json:"created,omitempty"`
	Model             string          `json:"model"`
	SystemFingerprint json.RawMessage `json:"system_fingerprint,omitempty"`
	Choices           []choiceOut     `json:"choices"`
	// Usage is left out, not zeroed, when no chunk carried it.
	Usage json.RawMessage `json:"usage,omitempty"`
}

// choiceOut is an assembled choice: message (chat) or text (completions).
type choiceOut struct {
	Index        int             `json:"index"`
	Message      *messageOut     `json:"message,omitempty"`
	Text         *string         `json:"text,omitempty"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs"`
}

// messageOut is the assembled message of a chat choice.
type messageOut struct {
	Role string `json:"role"`
	// Content is null when no delta carried it (a tool-call-only answer).
	Content          *string       `json:"content"`
	ReasoningContent *string       `json:"reasoning_content,omitempty"`
	ToolCalls        []toolCallOut `json:"tool_calls,omitempty"`
}

// toolCallOut is an assembled tool call, as non-streamed answers have it.
type toolCallOut struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// out is the choice as the non-streamed answer from endpoint has it.
func (ch *choiceAcc) out(index int, endpoint jobs.Endpoint) choiceOut {
	c := choiceOut{Index: index, FinishReason: ch.finish, Logprobs: ch.logprobs.json()}
	if endpoint == jobs.EndpointCompletions {
		c.Text = ptr(ch.text.String())
		return c
	}
	m := &messageOut{Role: cmp.Or(ch.role, "assistant")}
	if ch.hasContent {
		m.Content = ptr(ch.content.String())
	}
	if ch.hasReasoning {
		m.ReasoningContent = ptr(ch.reasoning.String())
	}
	m.ToolCalls = ch.toolCalls()
	c.Message = m
	return c
}

func (ch *choiceAcc) toolCalls() []toolCallOut {
	var out []toolCallOut
	for _, i := range slices.Sorted(maps.Keys(ch.tools)) {
		t := ch.tools[i]
		tc := toolCallOut{ID: t.id, Type: cmp.Or(t.typ, "function")}
		tc.Function.Name, tc.Function.Arguments = t.name, t.args.String()
		out = append(out, tc)
	}
	return out
}

func ptr(s string) *string { return &s }

// logprobsAcc concatenates the logprobs objects of one choice's chunks.
// Every member that is an array ("content" and "refusal" in chat; "tokens",
// "token_logprobs", "top_logprobs" and "text_offset" in completions) is
// appended to; any other member keeps its first value. Members keep the
// order in which they first appeared.
type logprobsAcc struct {
	keys   []string
	values map[string]*bytes.Buffer // an array's items joined by commas, or the first value
	arrays map[string]bool
}

// add merges one chunk's logprobs; null and anything that is not an object
// add nothing.
func (l *logprobsAcc) add(raw json.RawMessage) {
	ms, err := jobs.Members(raw)
	if !present(raw) || err != nil {
		return
	}
	if l.values == nil {
		l.values, l.arrays = map[string]*bytes.Buffer{}, map[string]bool{}
	}
	for _, m := range ms {
		v := l.values[m.Key]
		if v == nil {
			v = &bytes.Buffer{}
			l.values[m.Key] = v
			l.keys = append(l.keys, m.Key)
		}
		var items []json.RawMessage
		if json.Unmarshal(raw[m.ValueStart:m.End], &items) != nil || items == nil {
			if v.Len() == 0 {
				v.Write(raw[m.ValueStart:m.End])
			}
			continue
		}
		if !l.arrays[m.Key] {
			v.Reset() // an array after a null: the null was no value
			l.arrays[m.Key] = true
		}
		for _, it := range items {
			if v.Len() > 0 {
				v.WriteByte(',')
			}
			v.Write(it)
		}
	}
}

// json renders the merged object, or null when no chunk had logprobs.
func (l *logprobsAcc) json() json.RawMessage {
	if len(l.keys) == 0 {
		return json.RawMessage("null")
	}
	b := []byte{'{'}
	for i, k := range l.keys {
		if i > 0 {
			b = append(b, ',')
		}
		key, _ := json.Marshal(k)
		b = append(append(b, key...), ':')
		if l.arrays[k] {
			b = append(append(append(b, '['), l.values[k].Bytes()...), ']')
		} else {
			b = append(b, l.values[k].Bytes()...)
		}
	}
	return append(b, '}')
}
