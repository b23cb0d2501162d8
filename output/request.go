package output

import (
	"strings"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
	"github.com/llmbatch/llmbatch/jobs"
)

// promptText is the text a request asked about, as --with-request gives it
// beside the body: for chat the last user message's text (its text parts
// joined by line breaks when the content is a list of parts), for
// completions the prompt, for embeddings the input. ok is false when the
// body has no such text: no user message, a prompt of tokens, a list of
// several inputs.
func promptText(ep jobs.Endpoint, body []byte) (string, bool) {
	switch ep {
	case jobs.EndpointChat:
		return lastUserText(body)
	case jobs.EndpointCompletions:
		return singleText(body, "prompt")
	case jobs.EndpointEmbeddings:
		return singleText(body, "input")
	}
	return "", false
}

// singleText is the string value of key, or the one string of a list of
// one.
func singleText(body []byte, key string) (string, bool) {
	v, ok := jobs.Lookup(body, key)
	if !ok {
		return "", false
	}
	if v = jsonscan.TrimSpace(v); len(v) > 0 && v[0] == '[' {
		var only []byte
		for i, item := range jsonscan.Items(v) {
			if i > 0 {
				return "", false
			}
			only = item
		}
		v = only
	}
	return unquote(v)
}

// lastUserText is the text of the last message whose role is user.
func lastUserText(body []byte) (string, bool) {
	msgs, ok := jobs.Lookup(body, "messages")
	if !ok {
		return "", false
	}
	var content []byte
	found := false
	for _, m := range jsonscan.Items(msgs) {
		if role, ok := jobs.Lookup(m, "role"); ok {
			if r, _ := unquote(role); r == "user" {
				content, found = jobs.Lookup(m, "content")
			}
		}
	}
	if !found {
		return "", false
	}
	if s, ok := unquote(content); ok {
		return s, true
	}
	return partsText(content)
}

// partsText joins the text of the parts {"type":"text","text":...} of a
// message's content.
func partsText(content []byte) (string, bool) {
	var sb strings.Builder
	n := 0
	for _, part := range jsonscan.Items(content) {
		typ, _ := jobs.Lookup(part, "type")
		if t, _ := unquote(typ); t != "text" {
			continue
		}
		text, _ := jobs.Lookup(part, "text")
		s, ok := unquote(text)
		if !ok {
			continue
		}
		if n > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(s)
		n++
	}
	return sb.String(), n > 0
}

// unquote is the value of the JSON string v, its bytes that are not UTF-8
// replaced by U+FFFD; ok is false when v is not a string.
func unquote(v []byte) (string, bool) {
	v = jsonscan.TrimSpace(v)
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	s, ok := jsonscan.Unquote(v)
	if ok && !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s, ok
}
