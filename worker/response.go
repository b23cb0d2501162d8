package worker

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/jobs"
)

// response holds only the fields of a completion that we record; the rest
// of the body is kept raw. Every field is read leniently: a value of an
// unexpected type reads as empty (or, in usage, as unknown) rather than
// failing the body, because a 2xx answer has been paid for and is kept.
type response struct {
	ID      lenientString   `json:"id"`
	Model   lenientString   `json:"model"`
	Choices choiceList      `json:"choices"`
	Usage   *usage          `json:"usage"`
	Error   json.RawMessage `json:"error"`
}

// choiceList is the choices array; present is false when the body has no
// array there (absent, null or another type).
type choiceList struct {
	present bool
	items   []respChoice
}

func (l *choiceList) UnmarshalJSON(b []byte) error {
	if b[0] != '[' {
		return nil // null, or not an array: no choices
	}
	l.present = true
	return json.Unmarshal(b, &l.items)
}

// respChoice is one choice; anything but an object reads as an empty one.
type respChoice struct {
	Message      *respMessage  `json:"message"`
	Text         lenientString `json:"text"`
	FinishReason lenientString `json:"finish_reason"`
}

func (c *respChoice) UnmarshalJSON(b []byte) error {
	type plain respChoice
	if b[0] != '{' {
		return nil
	}
	return json.Unmarshal(b, (*plain)(c))
}

// respMessage is a chat choice's message. vLLM and OpenRouter send the
// reasoning as "reasoning"; DeepSeek and most others as "reasoning_content".
type respMessage struct {
	Content          lenientString `json:"content"`
	ReasoningContent lenientString `json:"reasoning_content"`
	Reasoning        lenientString `json:"reasoning"`
}

func (m *respMessage) UnmarshalJSON(b []byte) error {
	type plain respMessage
	if b[0] != '{' {
		return nil
	}
	return json.Unmarshal(b, (*plain)(m))
}

// lenientString is a string field that reads any other value as "". Null
// leaves it as it was, as encoding/json leaves a string.
type lenientString string

func (s *lenientString) UnmarshalJSON(b []byte) error {
	if b[0] == 'n' {
		return nil
	}
	var v string
	if json.Unmarshal(b, &v) != nil {
		v = ""
	}
	*s = lenientString(v)
	return nil
}

type apiError struct {
	Message string          `json:"message"`
	Code    json.RawMessage `json:"code"`
}

// parseResponse reads a 2xx body. A body that is not a completion (invalid
// JSON, no choices, an error object) is a failed attempt; any other is kept,
// whatever the types of the fields we read.
func parseResponse(body []byte) (*jobs.Result, *CallError) {
	if res, ok := scanResponse(body); ok {
		return res, nil
	}
	return decodeResponse(body)
}

// decodeResponse is parseResponse with encoding/json. It defines what a body
// means: scanResponse declines every body outside the plain subset it
// handles, and the fuzz target holds it to this function's answers.
func decodeResponse(body []byte) (*jobs.Result, *CallError) {
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, &CallError{Failure: jobs.Failure{Class: jobs.ClassBadResponse,
			Message: fmt.Sprintf("response is not valid JSON: %v", err)}}
	}
	if present(r.Error) && len(r.Choices.items) == 0 {
		return nil, errorIn2xx(r.Error, body)
	}
	if !r.Choices.present {
		return nil, &CallError{Failure: jobs.Failure{Class: jobs.ClassBadResponse,
			Message: "response has no choices"}}
	}
	res := &jobs.Result{ResponseID: string(r.ID), Model: string(r.Model), Raw: body}
	if len(r.Choices.items) > 0 {
		c := r.Choices.items[0]
		if m := c.Message; m != nil {
			res.Content = string(m.Content)
			res.ReasoningContent = string(cmp.Or(m.ReasoningContent, m.Reasoning))
		} else {
			res.Content = string(c.Text)
		}
		res.FinishReason = string(c.FinishReason)
	}
	if r.Usage != nil {
		res.Usage = r.Usage.read()
	}
	return res, nil
}

// errorIn2xx is the failure of a 2xx body that holds an error and no
// choice: classified by a numeric code like an HTTP status, else a bad
// response; the body is kept.
func errorIn2xx(raw json.RawMessage, body []byte) *CallError {
	var ae apiError
	if json.Unmarshal(raw, &ae) != nil {
		var s string
		_ = json.Unmarshal(raw, &s)
		ae = apiError{Message: s}
	}
	class := jobs.ClassBadResponse
	var code int
	if json.Unmarshal(ae.Code, &code) == nil && code >= 400 && code <= 599 {
		class = jobs.ClassForStatus(code)
	}
	return &CallError{Failure: jobs.Failure{Class: class, StatusCode: code,
		Message: "error in a 2xx response: " + ae.Message, Body: body}}
}

// errorMessage extracts a provider's error message for a one-line summary;
// the whole body is kept separately.
func errorMessage(body []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Error) > 0 {
		var ae apiError
		if json.Unmarshal(e.Error, &ae) == nil && ae.Message != "" {
			return ae.Message
		}
		var s string
		if json.Unmarshal(e.Error, &s) == nil && s != "" {
			return s
		}
	}
	return truncate(strings.TrimSpace(string(body)), 300)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// scanResponse is the fast path of parseResponse. Decoding every body into
// response with encoding/json was a visible share of a dispatch run's CPU
// (reflection, and allocations for values we never read; BENCHMARKS.md), so
// this walks the body once with a scanner, notes where the values response
// reads are, and decodes only those.
//
// It reports ok false, and parseResponse falls back to decodeResponse, for
// every body outside a plain subset, so that encoding/json alone decides the
// subtle cases: a key we read given twice or not exactly as we spell it, a
// count that is not a plain integer from 0 to maxTokenCount, a string we
// read holding invalid UTF-8, a value of the wrong type, and every body that
// is not a completion (invalid JSON, no choices, a non-null error), so that
// failures keep encoding/json's messages.
func scanResponse(body []byte) (*jobs.Result, bool) {
	s := scanner{b: body}
	var p picked
	if !s.top(&p) {
		return nil, false
	}
	if s.ws(); s.i != len(body) || !p.choices {
		return nil, false
	}
	return p.result(body)
}

// picked is what scanResponse reads of a body: the fields of response.
type picked struct {
	id, model text
	choices   bool // an array, maybe empty
	first     choice
	usage     bool // an object, not null or absent
	// The counts of usage and its details, named after their keys.
	prompt, completion, total, cacheHit, reasoning, cached int64
}

type choice struct {
	message bool // an object, not null or absent
	// reasoning is reasoning_content; reasoningAlt is "reasoning" (vLLM,
	// OpenRouter), read when reasoning_content is empty.
	content, reasoning, reasoningAlt text
	text, finish                     text
}

// The keys of each object we read from, indexed by constants for the
// switch that reads their values.
const (
	topID = iota
	topModel
	topChoices
	topUsage
	topError
)

var topKeys = []string{topID: "id", topModel: "model", topChoices: "choices", topUsage: "usage", topError: "error"}

func (s *scanner) top(p *picked) bool {
	_, ok := s.fields(topKeys, func(k int) bool {
		switch k {
		case topID:
			return s.string(&p.id)
		case topModel:
			return s.string(&p.model)
		case topChoices:
			return s.choices(p)
		case topUsage:
			return s.usage(p)
		}
		return s.peek() == 'n' && s.null() // an error object is decodeResponse's to report
	})
	return ok
}

// choices reads every element, not only the first: a value of the wrong
// type in any of them fails encoding/json.
func (s *scanner) choices(p *picked) bool {
	if s.peek() != '[' {
		return false // null, so no choices, or a type error
	}
	p.choices = true
	n := 0
	return s.array(func() bool {
		var c choice
		ok := s.choice(&c)
		if n == 0 {
			p.first = c
		}
		n++
		return ok
	})
}

const (
	choiceMessage = iota
	choiceText
	choiceFinish
)

var choiceKeys = []string{choiceMessage: "message", choiceText: "text", choiceFinish: "finish_reason"}

// choice reads an element of choices; null is a zero choice.
func (s *scanner) choice(c *choice) bool {
	_, ok := s.fields(choiceKeys, func(k int) bool {
		switch k {
		case choiceMessage:
			return s.message(c)
		case choiceText:
			return s.string(&c.text)
		}
		return s.string(&c.finish)
	})
	return ok
}

var messageKeys = []string{"content", "reasoning_content", "reasoning"}

func (s *scanner) message(c *choice) bool {
	isObject, ok := s.fields(messageKeys, func(k int) bool {
		switch k {
		case 0:
			return s.string(&c.content)
		case 1:
			return s.string(&c.reasoning)
		}
		return s.string(&c.reasoningAlt)
	})
	c.message = isObject
	return ok
}

const (
	usagePrompt = iota
	usageCompletion
	usageTotal
	usageCacheHit
	usageCompletionDetails
	usagePromptDetails
)

var usageKeys = []string{usagePrompt: "prompt_tokens", usageCompletion: "completion_tokens",
	usageTotal: "total_tokens", usageCacheHit: "prompt_cache_hit_tokens",
	usageCompletionDetails: "completion_tokens_details", usagePromptDetails: "prompt_tokens_details"}

func (s *scanner) usage(p *picked) bool {
	counts := [...]*int64{usagePrompt: &p.prompt, usageCompletion: &p.completion,
		usageTotal: &p.total, usageCacheHit: &p.cacheHit}
	isObject, ok := s.fields(usageKeys, func(k int) bool {
		switch k {
		case usageCompletionDetails:
			return s.detail("reasoning_tokens", &p.reasoning)
		case usagePromptDetails:
			return s.detail("cached_tokens", &p.cached)
		}
		return s.int(counts[k])
	})
	p.usage = isObject
	return ok
}

// detail reads a usage details object, or null, for the one count we
// record from it.
func (s *scanner) detail(key string, n *int64) bool {
	keys := [...]string{key}
	_, ok := s.fields(keys[:], func(int) bool { return s.int(n) })
	return ok
}

// result decodes the picked strings into a Result. They share one
// allocation: they are stored together and dropped together.
func (p *picked) result(body []byte) (*jobs.Result, bool) {
	c := p.first
	content, reasoning, alt := c.text, text{}, text{}
	if c.message {
		content, reasoning, alt = c.content, c.reasoning, c.reasoningAlt
	}
	texts := [...]text{p.id, p.model, content, reasoning, c.finish, alt}
	size := 0
	for _, t := range texts {
		size += t.hi - t.lo // decoding never makes a string longer
	}
	var sb strings.Builder
	sb.Grow(size)
	var ends [len(texts)]int
	for i, t := range texts {
		if !appendText(&sb, body[t.lo:t.hi], t.esc) {
			return nil, false
		}
		ends[i] = sb.Len()
	}
	all := sb.String()
	res := &jobs.Result{Raw: body, ResponseID: all[:ends[0]], Model: all[ends[0]:ends[1]],
		Content: all[ends[1]:ends[2]], ReasoningContent: all[ends[2]:ends[3]], FinishReason: all[ends[3]:ends[4]]}
	if res.ReasoningContent == "" {
		res.ReasoningContent = all[ends[4]:ends[5]]
	}
	if p.usage {
		res.Usage = jobs.Usage{Known: true, PromptTokens: p.prompt, CompletionTokens: p.completion,
			TotalTokens: p.total, CachedTokens: p.cacheHit, ReasoningTokens: p.reasoning}
		if p.cached > 0 {
			res.Usage.CachedTokens = p.cached
		}
		res.Usage = res.Usage.Totalled()
	}
	return res, true
}

// pick finds key among keys. It returns -1 for a key we do not read, and
// ok false for one the fast path declines: a repeat of a key we read (in
// encoding/json the last wins, merged into the first if both are objects
// or arrays), or a key encoding/json might match to one of ours though it
// is not exactly the same (other case, escapes, Unicode folding such as
// "ſ" for "s").
func pick(key []byte, keys []string, seen *uint) (k int, ok bool) {
	for k, name := range keys {
		if string(key) == name {
			if *seen&(1<<k) != 0 {
				return k, false
			}
			*seen |= 1 << k
			return k, true
		}
	}
	if hasSpecial(key) {
		return -1, false
	}
	for _, name := range keys {
		if foldEqual(key, name) {
			return -1, false
		}
	}
	return -1, true
}

// hasSpecial reports whether key has escapes or non-ASCII bytes, which
// could make encoding/json match it to one of our keys.
func hasSpecial(key []byte) bool {
	for _, c := range key {
		if c == '\\' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// foldEqual reports whether the ASCII key equals name, a lowercase key, but
// for case.
func foldEqual(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}
