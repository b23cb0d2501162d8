package fakeapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type endpoint int

const (
	chatEndpoint endpoint = iota + 1
	completionsEndpoint
)

// route finds the endpoint by path suffix, so any base path prefix works.
func route(path string) (endpoint, bool) {
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		return chatEndpoint, true
	case strings.HasSuffix(path, "/completions"):
		return completionsEndpoint, true
	}
	return 0, false
}

// request is the part of a request body the fake reads; every other field
// is accepted and ignored.
type request struct {
	Model               string          `json:"model"`
	Messages            []message       `json:"messages"`
	Prompt              json.RawMessage `json:"prompt"`
	N                   *int            `json:"n"`
	MaxTokens           int             `json:"max_tokens"`
	MaxCompletionTokens int             `json:"max_completion_tokens"`
	Stream              bool            `json:"stream"`
	StreamOptions       struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	// Stop and ServiceTier are echoed in StyleVLLM's stop_reason and
	// service_tier.
	Stop        json.RawMessage `json:"stop"`
	ServiceTier json.RawMessage `json:"service_tier"`

	chat         bool
	n            int
	inputs       []string // what each answer echoes: one for chat, one per prompt
	key          string   // Call.CustomKey
	promptTokens int
}

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// parseRequest decodes body for endpoint ep, or returns the 400 to answer.
func parseRequest(ep endpoint, body []byte) (*request, *apiError) {
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, badRequest("", "We could not parse the JSON body of your request: "+err.Error())
	}
	req.chat = ep == chatEndpoint
	req.n = 1
	if req.N != nil {
		req.n = *req.N
	}
	if req.n < 1 || req.n > 128 {
		return nil, badRequest("n", "n must be between 1 and 128")
	}
	if req.chat {
		return &req, req.parseMessages()
	}
	return &req, req.parsePrompt()
}

func (req *request) parseMessages() *apiError {
	if len(req.Messages) == 0 {
		return badRequest("messages", "messages must be a non-empty array")
	}
	words, last, lastUser, found := 0, "", "", false
	for _, m := range req.Messages {
		text := contentText(m.Content)
		words += countWords(text)
		last = text
		if m.Role == "user" {
			lastUser, found = text, true
		}
	}
	if !found {
		lastUser = last
	}
	req.key = lastUser
	req.inputs = []string{lastUser}
	req.promptTokens = words + 3
	return nil
}

// contentText is the text of a message content: a string, or the "text" of
// an array of content parts joined by spaces; anything else is "".
func contentText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	case '[':
		var parts []struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(raw, &parts)
		texts := make([]string, 0, len(parts))
		for _, p := range parts {
			if p.Text != "" {
				texts = append(texts, p.Text)
			}
		}
		return strings.Join(texts, " ")
	}
	return ""
}

// parsePrompt accepts a string, an array of strings, an array of tokens or
// an array of token arrays, as OpenAI does.
func (req *request) parsePrompt() *apiError {
	raw := bytes.TrimSpace(req.Prompt)
	if len(raw) == 0 || string(raw) == "null" {
		return badRequest("prompt", "prompt is required")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		req.setPrompts([]string{one}, one, countWords(one))
		return nil
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, raw)
	key := compact.String()
	var many []string
	if json.Unmarshal(raw, &many) == nil && len(many) > 0 {
		words := 0
		for _, p := range many {
			words += countWords(p)
		}
		req.setPrompts(many, key, words)
		return nil
	}
	var tokens []int
	if json.Unmarshal(raw, &tokens) == nil && len(tokens) > 0 {
		req.setPrompts([]string{tokenText(tokens)}, key, len(tokens))
		return nil
	}
	var tokenLists [][]int
	if json.Unmarshal(raw, &tokenLists) == nil && len(tokenLists) > 0 {
		prompts, words := make([]string, len(tokenLists)), 0
		for i, t := range tokenLists {
			prompts[i] = tokenText(t)
			words += len(t)
		}
		req.setPrompts(prompts, key, words)
		return nil
	}
	return badRequest("prompt", "prompt must be a string, an array of strings, an array of tokens or an array of token arrays")
}

func (req *request) setPrompts(prompts []string, key string, words int) {
	req.inputs, req.key, req.promptTokens = prompts, key, words+3
}

func tokenText(tokens []int) string {
	b := make([]byte, 0, 6*len(tokens))
	for i, t := range tokens {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(t), 10)
	}
	return string(b)
}

// countWords is len(strings.Fields(s)) without the allocation.
func countWords(s string) int {
	n, inWord := 0, false
	for _, r := range s {
		space := r < utf8.RuneSelf && asciiSpace(byte(r)) || r >= utf8.RuneSelf && unicode.IsSpace(r)
		if !space && !inWord {
			n++
		}
		inWord = !space
	}
	return n
}

func asciiSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f'
}

// firstStop is the request's first stop string, "" without one.
func (req *request) firstStop() string {
	var one string
	if json.Unmarshal(req.Stop, &one) == nil {
		return one
	}
	var many []string
	if json.Unmarshal(req.Stop, &many) == nil && len(many) > 0 {
		return many[0]
	}
	return ""
}
