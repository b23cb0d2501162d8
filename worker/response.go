package worker

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/jobs"
)

// response holds only the fields of a completion that we record; the rest
// of the body is kept raw.
type response struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Message *struct {
			Content          *string `json:"content"`
			ReasoningContent *string `json:"reasoning_content"`
		} `json:"message"`
		Text         *string `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens            int64 `json:"prompt_tokens"`
		CompletionTokens        int64 `json:"completion_tokens"`
		TotalTokens             int64 `json:"total_tokens"`
		PromptCacheHitTokens    int64 `json:"prompt_cache_hit_tokens"`
		CompletionTokensDetails *struct {
			ReasoningTokens int64 `json:"reasoning_tokens"`
		} `json:"completion_tokens_details"`
		PromptTokensDetails *struct {
			CachedTokens int64 `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error *apiError `json:"error"`
}

type apiError struct {
	Message string          `json:"message"`
	Code    json.RawMessage `json:"code"`
}

// parseResponse reads a 2xx body. A body that is not a completion (invalid
// JSON, no choices, an error object) is a failed attempt.
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
	if r.Error != nil && len(r.Choices) == 0 {
		class := jobs.ClassBadResponse
		var code int
		if json.Unmarshal(r.Error.Code, &code) == nil && code >= 400 && code <= 599 {
			class = jobs.ClassForStatus(code)
		}
		return nil, &CallError{Failure: jobs.Failure{Class: class, StatusCode: code,
			Message: "error in a 2xx response: " + r.Error.Message, Body: body}}
	}
	if r.Choices == nil {
		return nil, &CallError{Failure: jobs.Failure{Class: jobs.ClassBadResponse,
			Message: "response has no choices"}}
	}
	res := &jobs.Result{ResponseID: r.ID, Model: r.Model, Raw: body}
	if len(r.Choices) > 0 {
		c := r.Choices[0]
		if m := c.Message; m != nil {
			res.Content, res.ReasoningContent = deref(m.Content), deref(m.ReasoningContent)
		} else {
			res.Content = deref(c.Text)
		}
		res.FinishReason = deref(c.FinishReason)
	}
	if u := r.Usage; u != nil {
		res.Usage = jobs.Usage{Known: true, PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
			TotalTokens: u.TotalTokens, CachedTokens: u.PromptCacheHitTokens}
		if d := u.CompletionTokensDetails; d != nil {
			res.Usage.ReasoningTokens = d.ReasoningTokens
		}
		if d := u.PromptTokensDetails; d != nil && d.CachedTokens > 0 {
			res.Usage.CachedTokens = d.CachedTokens
		}
	}
	return res, nil
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
// response with encoding/json cost about 7 % of the CPU of a dispatch run
// (reflection, and allocations for values we never read), so this walks
// the body once with a scanner, notes where the values response reads are,
// and decodes only those.
//
// It reports ok false, and parseResponse falls back to decodeResponse, for
// every body outside a plain subset, so that encoding/json alone decides the
// subtle cases: a key we read given twice or not exactly as we spell it, a
// count that is not a plain int64, a string we read holding invalid UTF-8,
// a value of the wrong type, and every body that is not a completion
// (invalid JSON, no choices, a non-null error), so that failures keep
// encoding/json's messages.
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
	message            bool // an object, not null or absent
	content, reasoning text
	text, finish       text
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

var messageKeys = []string{"content", "reasoning_content"}

func (s *scanner) message(c *choice) bool {
	isObject, ok := s.fields(messageKeys, func(k int) bool {
		if k == 0 {
			return s.string(&c.content)
		}
		return s.string(&c.reasoning)
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
	content, reasoning := c.text, text{}
	if c.message {
		content, reasoning = c.content, c.reasoning
	}
	texts := [...]text{p.id, p.model, content, reasoning, c.finish}
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
	if p.usage {
		res.Usage = jobs.Usage{Known: true, PromptTokens: p.prompt, CompletionTokens: p.completion,
			TotalTokens: p.total, CachedTokens: p.cacheHit, ReasoningTokens: p.reasoning}
		if p.cached > 0 {
			res.Usage.CachedTokens = p.cached
		}
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
