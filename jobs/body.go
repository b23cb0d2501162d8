package jobs

import (
	"slices"
	"strings"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
)

// Request bodies are sent byte for byte as the input gave them, so the few
// edits the runner makes (dropping custom_id and metadata from a bare body,
// adding a default model or stream options) splice top-level members of the
// raw JSON object instead of decoding and re-encoding it, which would lose
// key order and number spelling.

// Member is one top-level member of a JSON object: b[Start:End] is the whole
// `"key": value` text and b[ValueStart:End] the value.
type Member = jsonscan.Member

// Members lists the top-level members of the JSON object b in order. b must
// be valid JSON (check with json.Valid first); for anything else it returns
// an error but never panics.
func Members(b []byte) ([]Member, error) { return AppendMembers(nil, b) }

// AppendMembers is Members appending to dst, for callers that split many
// objects and can reuse one slice.
func AppendMembers(dst []Member, b []byte) ([]Member, error) {
	return jsonscan.AppendMembers(dst, b, commonKeys)
}

// commonKeys are the keys of request lines, bodies and messages. Their
// strings are shared rather than allocated for every object split.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range strings.Fields(`custom_id method url body metadata model messages prompt role content name
		temperature top_p top_k min_p max_tokens max_completion_tokens n stop stream stream_options include_usage
		presence_penalty frequency_penalty repetition_penalty logit_bias logprobs top_logprobs seed user
		response_format type json_schema schema strict tools tool_choice tool_calls tool_call_id function
		function_call functions parameters description arguments id text image_url detail reasoning_effort
		echo suffix best_of`) {
		m[k] = k
	}
	return m
}()

// Lookup returns the raw value of the top-level key in object b, if present.
func Lookup(b []byte, key string) ([]byte, bool) {
	ms, err := Members(b)
	if err != nil {
		return nil, false
	}
	for _, m := range ms {
		if m.Key == key {
			return b[m.ValueStart:m.End], true
		}
	}
	return nil, false
}

// WithoutMembers returns object b without its top-level members named in
// keys; every other byte is kept. It returns b itself when none is present.
func WithoutMembers(b []byte, keys ...string) ([]byte, error) {
	ms, err := Members(b)
	if err != nil {
		return nil, err
	}
	if !hasAny(ms, keys) {
		return b, nil
	}
	return AppendWithoutMembers(make([]byte, 0, len(b)), b, ms, keys...), nil
}

// AppendWithoutMembers appends to dst what WithoutMembers returns when it
// drops something, for a caller that has split b into ms already.
func AppendWithoutMembers(dst, b []byte, ms []Member, keys ...string) []byte {
	dst = append(dst, '{')
	n := 0
	for _, m := range ms {
		if slices.Contains(keys, m.Key) {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, b[m.Start:m.End]...)
		n++
	}
	return append(dst, '}')
}

func hasAny(ms []Member, keys []string) bool {
	for _, m := range ms {
		if slices.Contains(keys, m.Key) {
			return true
		}
	}
	return false
}

// WithMember returns object b with `"key":value` added as its first member.
// value must be valid JSON. The caller makes sure key is not present yet.
func WithMember(b []byte, key string, value []byte) ([]byte, error) {
	i := jsonscan.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, jsonscan.ErrNotObject
	}
	rest := jsonscan.SkipSpace(b, i+1)
	empty := rest < len(b) && b[rest] == '}'
	out := make([]byte, 0, len(b)+len(key)+len(value)+4)
	out = append(out, '{')
	out = jsonscan.AppendQuoted(out, key)
	out = append(out, ':')
	out = append(out, value...)
	if !empty {
		out = append(out, ',')
	}
	return append(out, b[i+1:]...), nil
}
