package output

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/jobs"
)

// FuzzEmbeddingVector: whatever body a provider sends, reading its vector
// never panics, the JSON array written is valid JSON, and a vector gives as
// many floats as its array has items.
func FuzzEmbeddingVector(f *testing.F) {
	for _, s := range []string{embeddingRaw, embeddingBase64Raw, `{"data":[{"embedding":"AAAAPwAAgD4"}]}`,
		`{"data":[{"embedding":[1,"x"]}]}`, `{"Data":[{"EMBEDDING":[2]}],"data":[{"embedding":[1]}]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !json.Valid([]byte(raw)) {
			return // the store keeps only JSON bodies
		}
		vec, ok := firstEmbedding([]byte(raw))
		if !ok {
			return
		}
		fs, ferr := appendFloats(nil, vec)
		var r rawAppender
		var scratch []float32
		js, jerr := r.appendVectorJSON(nil, vec, &scratch)
		if jerr != nil {
			if vec[0] == '[' || ferr == nil {
				t.Fatalf("appendVectorJSON(%s) = %v; appendFloats = %v", vec, jerr, ferr)
			}
			return
		}
		var items []json.RawMessage
		if err := json.Unmarshal(js, &items); err != nil {
			t.Fatalf("appendVectorJSON(%s) = %s: not a JSON array: %v", vec, js, err)
		}
		if ferr == nil && len(items) != len(fs) {
			t.Fatalf("%s: %d floats for %d items", vec, len(fs), len(items))
		}
	})
}

// FuzzPromptText: a body of any shape gives a prompt of valid UTF-8, or
// none, and never panics.
func FuzzPromptText(f *testing.F) {
	f.Add(uint8(0), `{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}`)
	f.Add(uint8(1), `{"prompt":["once"]}`)
	f.Add(uint8(2), `{"input":"caf\u00e9"}`)
	eps := []jobs.Endpoint{jobs.EndpointChat, jobs.EndpointCompletions, jobs.EndpointEmbeddings}
	f.Fuzz(func(t *testing.T, ep uint8, body string) {
		p, ok := promptText(eps[int(ep)%len(eps)], []byte(body))
		if !ok && p != "" {
			t.Fatalf("promptText(%s) = %q without ok", body, p)
		}
		if !utf8.ValidString(p) {
			t.Fatalf("promptText(%s) = %q: not UTF-8", body, p)
		}
	})
}

// FuzzCSVField: a field comes back from a CSV reader as it was written
// (encoding/csv reads a CRLF inside a quoted field as LF, as the RFC lets
// it).
func FuzzCSVField(f *testing.F) {
	for _, s := range []string{"", "plain", "a,b", `say "hi"`, "two\nlines", "\r\n", " padded ", "\"", "=1+2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || s == "" {
			return // the rows hold UTF-8; an empty text is written as ""
		}
		line := appendCSVField(nil, []byte(s))
		line = append(append(line, ','), appendCSVField(nil, []byte(s))...)
		rows, err := csv.NewReader(bytes.NewReader(append(line, '\r', '\n'))).ReadAll()
		want := strings.ReplaceAll(s, "\r\n", "\n")
		if err != nil || len(rows) != 1 || len(rows[0]) != 2 || rows[0][0] != want || rows[0][1] != want {
			t.Fatalf("field %q written as %q read back as %q, %v", s, line, rows, err)
		}
	})
}
