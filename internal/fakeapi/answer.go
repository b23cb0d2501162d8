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
}

type replyChoice struct {
	content, reasoning, finish string
}

func newReply(req *request, n, created int64, reasoning bool) *reply {
	rep := &reply{chat: req.chat, created: created, model: req.Model}
	rep.id = "cmpl-" + strconv.FormatInt(n, 10)
	if req.chat {
		rep.id = "chatcmpl-" + strconv.FormatInt(n, 10)
	}
	limit := req.MaxTokens
	if req.MaxCompletionTokens > 0 {
		limit = req.MaxCompletionTokens
	}
	words, thoughts := 0, 0
	for _, in := range req.inputs {
		c := replyChoice{content: "echo: " + in, finish: "stop"}
		if limit > 0 {
			if w := strings.Fields(c.content); len(w) > limit {
				c.content, c.finish = strings.Join(w[:limit], " "), "length"
			}
		}
		if reasoning && req.chat {
			c.reasoning = "thinking about " + in
		}
		for j := 0; j < req.n; j++ {
			rep.choices = append(rep.choices, c)
			words += countWords(c.content)
			thoughts += countWords(c.reasoning)
		}
	}
	u := &rep.usage
	u.PromptTokens = req.promptTokens
	u.CompletionTokens = words + thoughts
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	if reasoning && req.chat {
		u.Details = &usageDetails{ReasoningTokens: thoughts}
	}
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
	out := completionJSON{ID: rep.id, Object: rep.object(), Created: rep.created, Model: rep.model, Usage: &rep.usage}
	out.Choices = make([]choiceJSON, len(rep.choices))
	for i, c := range rep.choices {
		ch := choiceJSON{Index: i, FinishReason: strPtr(c.finish)}
		if rep.chat {
			ch.Message = &messageJSON{Role: "assistant", Content: c.content, ReasoningContent: c.reasoning}
		} else {
			ch.Text = strPtr(c.content)
		}
		out.Choices[i] = ch
	}
	b, _ := json.Marshal(out)
	return b
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

type completionJSON struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []choiceJSON `json:"choices"`
	// Usage is omitted when nil; json.RawMessage("null") writes null.
	Usage any `json:"usage,omitempty"`
}

type choiceJSON struct {
	Index        int          `json:"index"`
	Message      *messageJSON `json:"message,omitempty"`
	Delta        *deltaJSON   `json:"delta,omitempty"`
	Text         *string      `json:"text,omitempty"`
	FinishReason *string      `json:"finish_reason"`
	Logprobs     *struct{}    `json:"logprobs"` // always null
}

type messageJSON struct {
	Role             string `json:"role"`
	Content          string `json:"content"`
	ReasoningContent string `json:"reasoning_content,omitempty"`
}

type deltaJSON struct {
	Role             string  `json:"role,omitempty"`
	Content          *string `json:"content,omitempty"`
	ReasoningContent *string `json:"reasoning_content,omitempty"`
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
