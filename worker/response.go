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
