package fakeapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// reply is the deterministic answer to one request, before it is shaped as
// a JSON body or as stream events.
type reply struct {
	id      string
	chat    bool
	created int64
	model   string
	choices []replyChoice
	usage   usageJSON
	// How the answer is shaped (Config.Style, Config.FloatUsage), and what
	// StyleVLLM echoes of the request.
	style      string
	floatUsage bool
	// deltas is the most pieces a stream sends each text in: maxDeltas,
	// or a word each under Config.StreamWords.
	deltas      int
	stop        string
	serviceTier json.RawMessage
}

type replyChoice struct {
	content, reasoning, finish string
}

// newReply is the answer to call n.
func newReply(req *request, n, created int64, reasoning bool) *reply {
	return newLongReply(req, n, created, reasoning, 0)
}

// newLongReply is newReply whose texts, when words is positive, are
// lengthened to that many words and streamed a word per event
// (Config.StreamWords).
func newLongReply(req *request, n, created int64, reasoning bool, words int) *reply {
	rep := &reply{chat: req.chat, created: created, model: req.Model, stop: req.firstStop(), serviceTier: req.ServiceTier,
		deltas: maxDeltas}
	if words > 0 {
		rep.deltas = words
	}
	rep.id = "cmpl-" + strconv.FormatInt(n, 10)
	if req.chat {
		rep.id = "chatcmpl-" + strconv.FormatInt(n, 10)
	}
	limit := req.MaxTokens
	if req.MaxCompletionTokens > 0 {
		limit = req.MaxCompletionTokens
	}
	answered, thoughts := 0, 0
	for _, in := range req.inputs {
		c := replyChoice{content: lengthen("echo: "+in, words), finish: "stop"}
		if limit > 0 {
			if w := strings.Fields(c.content); len(w) > limit {
				c.content, c.finish = strings.Join(w[:limit], " "), "length"
			}
		}
		if reasoning && req.chat {
			c.reasoning = lengthen("thinking about "+in, words)
		}
		for j := 0; j < req.n; j++ {
			rep.choices = append(rep.choices, c)
			answered += countWords(c.content)
			thoughts += countWords(c.reasoning)
		}
	}
	u := &rep.usage
	u.PromptTokens = req.promptTokens
	u.CompletionTokens = answered + thoughts
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	if reasoning && req.chat {
		u.Details = &usageDetails{ReasoningTokens: thoughts}
	}
	return rep
}

// lengthen repeats the words of s until it has words of them; s as it is
// when words is not positive or s has no word.
func lengthen(s string, words int) string {
	have := strings.Fields(s)
	if words <= 0 || len(have) == 0 || len(have) == words {
		return s
	}
	out := make([]string, words)
	for i := range out {
		out[i] = have[i%len(have)]
	}
	return strings.Join(out, " ")
}

// styled sets how the answer is shaped from cfg, and returns rep.
func (rep *reply) styled(cfg *Config) *reply {
	rep.style, rep.floatUsage = cfg.Style, cfg.FloatUsage
	return rep
}

func (rep *reply) object() string {
	if rep.chat {
		return "chat.completion"
	}
	return "text_completion"
}

// body is the JSON of the non-streamed answer.
func (rep *reply) body() []byte {
	out := rep.head(rep.object(), rep.usageJSON())
	out.Choices = make([]choiceJSON, len(rep.choices))
	for i, c := range rep.choices {
		ch := rep.finished(i, c.finish)
		if rep.chat {
			m := &messageJSON{Role: "assistant", Content: c.content, ReasoningContent: c.reasoning}
			if rep.style != StyleDeepSeek {
				m.ReasoningContent, m.Reasoning = "", c.reasoning
			}
			ch.Message = m
		} else {
			ch.Text = strPtr(c.content)
		}
		out.Choices[i] = ch
	}
	b, _ := json.Marshal(out)
	return b
}

// head is the top level of a body or chunk, without choices.
func (rep *reply) head(object string, usage any) completionJSON {
	out := completionJSON{ID: rep.id, Object: object, Created: rep.created, Model: rep.model, Usage: usage}
	switch rep.style {
	case StyleVLLM:
		out.ServiceTier = json.RawMessage("null")
		if len(rep.serviceTier) > 0 {
			out.ServiceTier = rep.serviceTier
		}
	case StyleOpenRouter:
		out.Provider = "FakeInfra"
	}
	return out
}

// finished is a choice with its finish reason and the style's fields
// beside it: vLLM's stop_reason, the request's first stop string when the
// choice stopped and the request set one (the fake does not cut the text
// there), else null; OpenRouter's native_finish_reason.
func (rep *reply) finished(i int, finish string) choiceJSON {
	ch := choiceJSON{Index: i, FinishReason: strPtr(finish)}
	switch rep.style {
	case StyleVLLM:
		ch.StopReason = json.RawMessage("null")
		if finish == "stop" && rep.stop != "" {
			ch.StopReason = rep.stop
		}
	case StyleOpenRouter:
		ch.NativeFinishReason = finish
	}
	return ch
}

// usageJSON is the usage as the body writes it: with float counts for
// Config.FloatUsage.
func (rep *reply) usageJSON() any {
	if !rep.floatUsage {
		return &rep.usage
	}
	u := rep.usage
	f := func(n int) json.Number { return json.Number(strconv.Itoa(n) + ".0") }
	out := floatUsageJSON{PromptTokens: f(u.PromptTokens), CompletionTokens: f(u.CompletionTokens), TotalTokens: f(u.TotalTokens)}
	if u.Details != nil {
		out.Details = &floatDetails{ReasoningTokens: f(u.Details.ReasoningTokens)}
	}
	return &out
}

func (rep *reply) served() Usage {
	u := Usage{
		PromptTokens:     int64(rep.usage.PromptTokens),
		CompletionTokens: int64(rep.usage.CompletionTokens),
		TotalTokens:      int64(rep.usage.TotalTokens),
	}
	if rep.usage.Details != nil {
		u.ReasoningTokens = int64(rep.usage.Details.ReasoningTokens)
	}
	return u
}

// completionJSON is a body or a chunk. The fields of type any are omitted
// when nil; json.RawMessage("null") writes null.
type completionJSON struct {
	ID          string       `json:"id"`
	Provider    string       `json:"provider,omitempty"` // StyleOpenRouter
	Object      string       `json:"object"`
	Created     int64        `json:"created"`
	Model       string       `json:"model"`
	Choices     []choiceJSON `json:"choices"`
	ServiceTier any          `json:"service_tier,omitempty"` // StyleVLLM
	Usage       any          `json:"usage,omitempty"`
}

type choiceJSON struct {
	Index              int          `json:"index"`
	Message            *messageJSON `json:"message,omitempty"`
	Delta              *deltaJSON   `json:"delta,omitempty"`
	Text               *string      `json:"text,omitempty"`
	FinishReason       *string      `json:"finish_reason"`
	Logprobs           *struct{}    `json:"logprobs"`                       // always null
	StopReason         any          `json:"stop_reason,omitempty"`          // StyleVLLM
	NativeFinishReason any          `json:"native_finish_reason,omitempty"` // StyleOpenRouter
}

type messageJSON struct {
	Role             string `json:"role"`
	Content          string `json:"content"`
	ReasoningContent string `json:"reasoning_content,omitempty"`
	Reasoning        string `json:"reasoning,omitempty"` // StyleVLLM, StyleOpenRouter
}

type deltaJSON struct {
	Role             string  `json:"role,omitempty"`
	Content          *string `json:"content,omitempty"`
	ReasoningContent *string `json:"reasoning_content,omitempty"`
	Reasoning        *string `json:"reasoning,omitempty"` // StyleVLLM, StyleOpenRouter
}

type usageJSON struct {
	PromptTokens     int           `json:"prompt_tokens"`
	CompletionTokens int           `json:"completion_tokens"`
	TotalTokens      int           `json:"total_tokens"`
	Details          *usageDetails `json:"completion_tokens_details,omitempty"`
}

type usageDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// floatUsageJSON is usageJSON written with float counts.
type floatUsageJSON struct {
	PromptTokens     json.Number   `json:"prompt_tokens"`
	CompletionTokens json.Number   `json:"completion_tokens"`
	TotalTokens      json.Number   `json:"total_tokens"`
	Details          *floatDetails `json:"completion_tokens_details,omitempty"`
}

type floatDetails struct {
	ReasoningTokens json.Number `json:"reasoning_tokens"`
}

func strPtr(s string) *string { return &s }

// apiError is an OpenAI-style error answer.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    any     `json:"code"`
}

func (e *apiError) body() []byte {
	b, _ := json.Marshal(struct {
		Error *apiError `json:"error"`
	}{e})
	return b
}

func badRequest(param, msg string) *apiError {
	e := &apiError{status: http.StatusBadRequest, Message: msg, Type: "invalid_request_error"}
	if param != "" {
		e.Param = &param
	}
	return e
}

// unauthorized never repeats the key it was given: tests check that a key
// cannot leak through the provider's error message.
func unauthorized(gotHeader bool) *apiError {
	msg := "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth."
	if gotHeader {
		msg = "Incorrect API key provided. You can find your API key in your account settings."
	}
	return &apiError{status: http.StatusUnauthorized, Message: msg, Type: "invalid_request_error", Code: "invalid_api_key"}
}

func notFound(path string) *apiError {
	return &apiError{status: http.StatusNotFound, Message: "Unknown request URL: " + path, Type: "invalid_request_error", Code: "unknown_url"}
}

func methodNotAllowed(method string) *apiError {
	return &apiError{status: http.StatusMethodNotAllowed, Message: "Method " + method + " not allowed; use POST.", Type: "invalid_request_error"}
}
