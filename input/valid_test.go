package input

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzValidJSON checks the fast validator against encoding/json: it must
// never accept what json.Valid rejects (validJSON trusts it then), and
// should agree otherwise too, or every line would be checked twice.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `""`, `0`, `-0`, `-`, `01`, `1.`, `1.5e`, `1.5e+3`, `1E-7`, `.5`, `+1`, `true`, `tru`, `nul`,
		` {"a" : [1, 2.5, -3e2, "x\u00e9\n", {"b": null}], "c": false} `, `{"a":1,}`, `[1,]`, `{"a"}`, `{a:1}`,
		`"\x"`, `"\u12G4"`, "\"a\x01\"", `"\/"`, `{"a":"b"}{}`, `[[[[]]]]`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000), "\"caf\xc3\xa9\"", "\"\xff\"", `{"a":1} x`, "",
		`{"custom_id":"r1","model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := fastValid(b), json.Valid(b); got != want {
			t.Errorf("fastValid(%q) = %v, json.Valid = %v", b, got, want)
		}
	})
}
