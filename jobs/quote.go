package jobs

import (
	"encoding/json"
	"strings"
)

// unquote decodes a raw JSON string, fast when it has no escapes.
func unquote(raw []byte) (string, error) {
	if len(raw) >= 2 && !strings.ContainsAny(string(raw[1:len(raw)-1]), `\"`) {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

func appendQuoted(dst []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(dst, q...)
}
