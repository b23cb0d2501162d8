package fakeapi

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParseBatchInput checks the requests read from a file: line numbers
// count blank lines, CRLF ends are accepted, and the body and model are
// kept as written.
func TestParseBatchInput(t *testing.T) {
	input := "\r\n" + inLine("a", chatURL, `{"model":"m1","messages":[]}`) + "\r\n\n" +
		`  {"custom_id":"b","method":"POST","url":"/v1/embeddings","body":{"model":7,"input":"x"}}  ` + "\n"
	lines, errs := parseBatchInput([]byte(input))
	if errs != nil {
		t.Fatalf("errors %+v", errs)
	}
	want := []batchLine{
		{no: 2, customID: "a", url: chatURL, body: []byte(`{"model":"m1","messages":[]}`), model: "m1"},
		{no: 4, customID: "b", url: "/v1/embeddings", body: []byte(`{"model":7,"input":"x"}`), model: "7"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i, got := range lines {
		w := want[i]
		if got.no != w.no || got.customID != w.customID || got.url != w.url || string(got.body) != string(w.body) || got.model != w.model {
			t.Errorf("line %d: %+v, want %+v", i, got, w)
		}
	}
}

// TestParseBatchInputErrorCap checks that a file of garbage lists at most
// maxValidationErrors errors.
func TestParseBatchInputErrorCap(t *testing.T) {
	lines, errs := parseBatchInput([]byte(strings.Repeat("nope\n", 100)))
	if lines != nil || len(errs) != maxValidationErrors || *errs[len(errs)-1].Line != maxValidationErrors {
		t.Errorf("%d lines, %d errors", len(lines), len(errs))
	}
}

// FuzzParseBatchInput checks, for any file, that the parser returns either
// requests or errors, and that the requests are well formed: unique
// non-empty custom_ids, bodies that are JSON objects, increasing line
// numbers.
func FuzzParseBatchInput(f *testing.F) {
	f.Add([]byte(inLine("a", chatURL, chatBody("m", "x")) + "\n" + inLine("b", chatURL, chatBody("m", "y"))))
	f.Add([]byte(""))
	f.Add([]byte("{\"custom_id\":\"a\"}\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, errs := parseBatchInput(data)
		if (lines == nil) == (errs == nil) {
			t.Fatalf("lines %d and errors %d: want exactly one", len(lines), len(errs))
		}
		if len(errs) > maxValidationErrors {
			t.Fatalf("%d errors", len(errs))
		}
		for _, e := range errs {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error %+v", e)
			}
		}
		seen, last := map[string]bool{}, 0
		for _, l := range lines {
			var body map[string]json.RawMessage
			if l.customID == "" || seen[l.customID] || l.no <= last || json.Unmarshal(l.body, &body) != nil || l.url == "" {
				t.Fatalf("line %+v", l)
			}
			seen[l.customID], last = true, l.no
		}
		// The rules must not panic on any parsed file either.
		batchRules{nth: 1, maxLines: 1, oneModel: true}.validate(lines, errs)
	})
}
