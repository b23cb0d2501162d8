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
	embeddingsEndpoint
)

// route finds the endpoint by path suffix, so any base path prefix works.
func route(path string) (endpoint, bool) {
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		return chatEndpoint, true
	case strings.HasSuffix(path, "/completions"):
		return completionsEndpoint, true
	case strings.HasSuffix(path, "/embeddings"):
		return embeddingsEndpoint, true
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
	emb          *embeddings // the answer of an embeddings request; nil for the others
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
	if ep == embeddingsEndpoint {
		return &req, req.parseEmbeddings(body)
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
	t, err := parseTexts("prompt", req.Prompt)
	if err != nil {
		return err
	}
	req.inputs, req.key, req.promptTokens = t.items, t.key, t.words+3
	return nil
}

// texts are the items of a prompt or an embeddings input: each one's text
// (token ids written as numbers separated by spaces), the key Call.CustomKey
// and Stats.ServedByKey name them by (a string itself, an array its compact
// JSON), and their words (a token counts as a word).
type texts struct {
	items []string
	key   string
	words int
}

// parseTexts reads field as a string, an array of strings, an array of
// tokens or an array of token arrays.
func parseTexts(field string, raw json.RawMessage) (texts, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return texts{}, badRequest(field, field+" is required")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return texts{[]string{one}, one, countWords(one)}, nil
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
		return texts{many, key, words}, nil
	}
	var tokens []int
	if json.Unmarshal(raw, &tokens) == nil && len(tokens) > 0 {
		return texts{[]string{tokenText(tokens)}, key, len(tokens)}, nil
	}
	var tokenLists [][]int
	if json.Unmarshal(raw, &tokenLists) == nil && len(tokenLists) > 0 {
		items, words := make([]string, len(tokenLists)), 0
		for i, t := range tokenLists {
			items[i] = tokenText(t)
			words += len(t)
		}
		return texts{items, key, words}, nil
	}
	return texts{}, badRequest(field, field+" must be a string, an array of strings, an array of tokens or an array of token arrays")
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
