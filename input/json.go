package input

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
	"github.com/llmbatch/llmbatch/jobs"
)

// object is a JSON object with its top-level members, found once and looked
// up by key.
type object struct {
	b  []byte
	ms []jobs.Member
}

// newObject splits the valid JSON object b. Duplicate keys are rejected:
// decoders disagree on which one wins (jobs.Lookup takes the first,
// encoding/json the last), so what we check might not be what is sent.
func newObject(b []byte) (object, string) { return newObjectIn(nil, b) }

// newObjectIn is newObject appending the members to buf, which the caller
// reuses.
func newObjectIn(buf []jobs.Member, b []byte) (object, string) {
	ms, err := jobs.AppendMembers(buf[:0], b)
	if err != nil {
		return object{}, fmt.Sprintf("cannot read the object: %v", err)
	}
	if k, ok := duplicateKey(ms); ok {
		return object{}, fmt.Sprintf("duplicate key %s", shorten(quote(k)))
	}
	return object{b: b, ms: ms}, ""
}

func duplicateKey(ms []jobs.Member) (string, bool) {
	if len(ms) < 16 {
		for i := range ms {
			for j := range i {
				if ms[i].Key == ms[j].Key {
					return ms[i].Key, true
				}
			}
		}
		return "", false
	}
	seen := make(map[string]bool, len(ms))
	for _, m := range ms {
		if seen[m.Key] {
			return m.Key, true
		}
		seen[m.Key] = true
	}
	return "", false
}

// get returns the raw value of key.
func (o object) get(key string) ([]byte, bool) {
	for _, m := range o.ms {
		if m.Key == key {
			return o.b[m.ValueStart:m.End], true
		}
	}
	return nil, false
}

func (o object) has(key string) bool {
	_, ok := o.get(key)
	return ok
}

// kind names the JSON type of the valid value v, as messages show it.
func kind(v []byte) string {
	v = trimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// article is kind with an article, for "expected a JSON object, got an array".
func article(v []byte) string {
	switch k := kind(v); k {
	case "null":
		return k
	case "array", "object":
		return "an " + k
	default:
		return "a " + k
	}
}

// got shows a value in a message: strings and numbers as spelled (shortened),
// other values by their type.
func got(v []byte) string {
	switch kind(v) {
	case "string", "number", "boolean":
		return shorten(string(trimSpace(v)))
	default:
		return kind(v)
	}
}

// shorten keeps messages one readable line even for a huge value.
func shorten(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// quote renders s as a JSON string, as encoding/json spells it.
func quote(s string) string { return string(jsonscan.AppendQuoted(nil, s)) }

var errNotString = errors.New("not a JSON string")

// unquote decodes a JSON string; most need no decoder.
func unquote(v []byte) (string, error) {
	s, ok := jsonscan.Unquote(trimSpace(v))
	if !ok {
		return "", errNotString
	}
	return s, nil
}

// trimSpace and skipSpace are jsonscan's, under the short names this
// package's files use.
func trimSpace(b []byte) []byte { return jsonscan.TrimSpace(b) }

func skipSpace(b []byte, i int) int { return jsonscan.SkipSpace(b, i) }

// nonEmptyString decodes the string value of field, or says why it is not one.
func nonEmptyString(field string, v []byte) (string, string) {
	if kind(v) != "string" {
		return "", fmt.Sprintf("%q must be a non-empty string, got %s", field, kind(v))
	}
	s, err := unquote(v)
	if err != nil {
		return "", fmt.Sprintf("%q: %v", field, err)
	}
	if s == "" {
		return "", fmt.Sprintf(`%q must be a non-empty string, got ""`, field)
	}
	return s, ""
}

// eachItem calls fn with each item of the valid JSON array v, in order,
// and returns the first reason fn gives. It scans the bytes rather than
// decoding, which would copy every item.
func eachItem(v []byte, fn func(i int, item []byte) string) string {
	for n, item := range jsonscan.Items(v) {
		if reason := fn(n, item); reason != "" {
			return reason
		}
	}
	return ""
}

func isEmptyArray(v []byte) bool {
	v = trimSpace(v)
	return len(v) >= 2 && v[skipSpace(v, 1)] == ']'
}
