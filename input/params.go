package input

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/llmbatch/llmbatch/jobs"
)

// A check validates the raw value of one body field and returns why it is
// invalid, or "". Numbers are parsed only to check them: the body keeps
// their spelling.
type check func(field string, v []byte) string

// params are the body fields the default provider documents, with their
// types and ranges. Every other field is sent unchecked. null is accepted
// for the optional ones, as the API reads it as "not set".
var params = map[string]check{
	"messages":           checkMessages,
	"prompt":             checkPrompt,
	"temperature":        optional(numberIn(0, 2)),
	"top_p":              optional(numberIn(0, 1)),
	"min_p":              optional(numberIn(0, 1)),
	"presence_penalty":   optional(numberIn(-2, 2)),
	"frequency_penalty":  optional(numberIn(-2, 2)),
	"repetition_penalty": optional(repetitionPenalty),
	"top_k":              optional(integerIn(-1, math.Inf(1))),
	"max_tokens":         optional(integerIn(1, math.Inf(1))),
	"n":                  optional(integerIn(1, 128)),
	"stop":               optional(checkStop),
	"logit_bias":         optional(checkLogitBias),
	"stream":             optional(checkBool),
}

func optional(c check) check {
	return func(field string, v []byte) string {
		if kind(v) == "null" {
			return ""
		}
		return c(field, v)
	}
}

// number parses a JSON number; ok is false for another type.
func number(v []byte) (float64, bool) {
	if kind(v) != "number" {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(trimSpace(v)), 64)
	// A value beyond float64 is Inf with an error: out of any range.
	return f, err == nil || math.IsInf(f, 0)
}

func numberIn(lo, hi float64) check {
	return func(field string, v []byte) string {
		f, ok := number(v)
		if !ok {
			return fmt.Sprintf("%q must be a number, got %s", field, kind(v))
		}
		if f < lo || f > hi || math.IsInf(f, 0) {
			return fmt.Sprintf("%q must be a number from %g to %g, got %s", field, lo, hi, got(v))
		}
		return ""
	}
}

func repetitionPenalty(field string, v []byte) string {
	f, ok := number(v)
	if !ok {
		return fmt.Sprintf("%q must be a number, got %s", field, kind(v))
	}
	if f <= 0 || f > 2 {
		return fmt.Sprintf("%q must be a number greater than 0 and at most 2, got %s", field, got(v))
	}
	return ""
}

// integerIn accepts integral numbers in [lo, hi]; hi may be +Inf. An
// integral value spelled as 100.0 or 1e3 is accepted, as JSON has no
// separate integer type.
func integerIn(lo, hi float64) check {
	return func(field string, v []byte) string {
		f, ok := number(v)
		if !ok {
			return fmt.Sprintf("%q must be an integer, got %s", field, kind(v))
		}
		if !math.IsInf(f, 0) && f != math.Trunc(f) {
			return fmt.Sprintf("%q must be an integer, got %s", field, got(v))
		}
		if f >= lo && f <= hi && !math.IsInf(f, 0) {
			return ""
		}
		if math.IsInf(hi, 1) {
			return fmt.Sprintf("%q must be an integer of at least %g, got %s", field, lo, got(v))
		}
		return fmt.Sprintf("%q must be an integer from %g to %g, got %s", field, lo, hi, got(v))
	}
}

func checkBool(field string, v []byte) string {
	if kind(v) != "boolean" {
		return fmt.Sprintf("%q must be a boolean, got %s", field, kind(v))
	}
	return ""
}

// maxStop is how many stop sequences the API accepts.
const maxStop = 4

func checkStop(field string, v []byte) string {
	const want = "%q must be a string or an array of at most %d strings, got %s"
	switch kind(v) {
	case "string":
		return ""
	case "array":
	default:
		return fmt.Sprintf(want, field, maxStop, kind(v))
	}
	n := 0
	reason := eachItem(v, func(i int, it []byte) string {
		n++
		if kind(it) != "string" {
			return fmt.Sprintf(want, field, maxStop, kind(it)+" in "+item(field, i))
		}
		return ""
	})
	if reason == "" && n > maxStop {
		reason = fmt.Sprintf(want, field, maxStop, fmt.Sprintf("%d items", n))
	}
	return reason
}

var bias = numberIn(-100, 100)

func checkLogitBias(field string, v []byte) string {
	if kind(v) != "object" {
		return fmt.Sprintf("%q must be an object mapping token ids to numbers from -100 to 100, got %s", field, kind(v))
	}
	obj, reason := newObject(v)
	if reason != "" {
		return fmt.Sprintf("%q: %s", field, reason)
	}
	for _, m := range obj.ms {
		bv := v[m.ValueStart:m.End]
		if reason := bias(field, bv); reason != "" {
			return fmt.Sprintf("%q value for token %s must be a number from -100 to 100, got %s",
				field, shorten(quote(m.Key)), got(bv))
		}
	}
	return ""
}

// roles are the message roles OpenAI-compatible APIs accept.
var roles = []string{"system", "user", "assistant", "tool", "developer", "function"}

func checkMessages(field string, v []byte) string {
	const want = "%q must be a non-empty array of message objects, got %s"
	if kind(v) != "array" {
		return fmt.Sprintf(want, field, kind(v))
	}
	if isEmptyArray(v) {
		return fmt.Sprintf(want, field, "an empty array")
	}
	return eachItem(v, func(i int, it []byte) string {
		return checkMessage(field, i, it)
	})
}

func checkMessage(field string, i int, v []byte) string {
	name := func() string { return fmt.Sprintf("%s[%d]", field, i) }
	if kind(v) != "object" {
		return fmt.Sprintf("%q must be an object, got %s", name(), kind(v))
	}
	var buf [8]jobs.Member // most messages have two or three members
	msg, reason := newObjectIn(buf[:0], v)
	if reason != "" {
		return fmt.Sprintf("%q: %s", name(), reason)
	}
	rv, ok := msg.get("role")
	if !ok {
		return fmt.Sprintf(`%q has no "role"`, name())
	}
	role := roleOf(rv)
	if kind(rv) != "string" || !slices.Contains(roles, role) {
		return fmt.Sprintf("%q must be one of %s, got %s", name()+".role", strings.Join(roles, ", "), got(rv))
	}
	return checkContent(name, role, msg)
}

// roleOf decodes the role rv; the common spellings share the strings of
// roles rather than allocating one per message.
func roleOf(rv []byte) string {
	if t := trimSpace(rv); len(t) >= 2 && t[0] == '"' {
		for _, r := range roles {
			if string(t[1:len(t)-1]) == r {
				return r
			}
		}
	}
	// A copy, so that rv (and the caller's buffer of members, which escape
	// analysis does not tell apart from it) stays on the stack.
	role, _ := unquote(bytes.Clone(rv))
	return role
}

// checkContent wants a string or an array of parts. An assistant message
// that calls tools may go without content, and any assistant message may
// have null content (the API sends such turns back that way).
func checkContent(name func() string, role string, msg object) string {
	cv, ok := msg.get("content")
	callsTools := role == "assistant" && (msg.has("tool_calls") || msg.has("function_call"))
	switch {
	case !ok && callsTools:
		return ""
	case !ok:
		return fmt.Sprintf(`%q has no "content"`, name())
	case kind(cv) == "string" || kind(cv) == "array":
		return ""
	case kind(cv) == "null" && role == "assistant":
		return ""
	}
	return fmt.Sprintf("%q must be a string or an array, got %s", name()+".content", kind(cv))
}
