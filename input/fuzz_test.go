package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// FuzzReader feeds arbitrary bytes as an input file. The reader must not
// panic, and whatever it hands out must be sendable: a JSON object body, a
// known endpoint, a model and a custom_id.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		lines(ok, hiBody),
		"\xEF\xBB\xBF" + hiBody + "\r\n\r\n" + `{"custom_id":"a","metadata":{"x":1},"prompt":[1,2]}`,
		`{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"assistant","tool_calls":[]}]}}`,
		`{"body":{"prompt":[[1],[2,3]],"model":"m","stop":["a"],"logit_bias":{"1":-5}},"metadata":null}`,
		`{"custom\u005fid":"c","model":"m","prompt":"p","temperature":1e-5,"n":1.0}`,
		`{"custom_id":"e","method":"POST","url":"/v1/embeddings","body":{"model":"e","input":["a","b"],"dimensions":8}}` + "\n" +
			`{"input":[[1,2],[3]],"encoding_format":"base64","metadata":{"k":1}}` + "\n" + `{"model":"e","input":"x","stream":false}`,
		"[1]\n\"x\"\n{\n\x00",
		"",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	// One file, rewritten for each input: a worker runs inputs one at a
	// time, and a directory per input would halve the rate.
	path := filepath.Join(f.TempDir(), "fuzz.jsonl")
	f.Fuzz(func(t *testing.T, data []byte, withModel bool) {
		opts := Options{}
		if withModel {
			opts.DefaultModel = "dm"
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		reqs, fp, err := readAll(t, path, opts)
		var verr *jobs.ValidationError
		if err != nil && !errors.As(err, &verr) {
			t.Fatalf("got %v, want nil or a *jobs.ValidationError", err)
		}
		physical := bytes.Split(data, []byte("\n"))
		for _, r := range reqs {
			checkRequest(t, r, physical)
		}
		if verr != nil {
			checkHandedOut(t, data, reqs, err)
			return
		}
		if n := countNonBlank(physical); len(reqs) != n {
			t.Errorf("got %d requests and no error for %d non-blank lines", len(reqs), n)
		}
		if want, _ := Fingerprint(path, opts); fp != want {
			t.Errorf("Reader.Fingerprint() = %q, Fingerprint() = %q", fp, want)
		}
	})
}

// checkRequest checks one handed-out request against its physical line.
func checkRequest(t *testing.T, r jobs.Request, physical [][]byte) {
	t.Helper()
	if !json.Valid(r.Body) || trimSpace(r.Body)[0] != '{' {
		t.Fatalf("line %d: body %q is not a JSON object", r.Line, r.Body)
	}
	if !r.Endpoint.Valid() || r.Model == "" || r.CustomID == "" {
		t.Errorf("line %d: got endpoint %q, model %q, custom_id %q; want all set", r.Line, r.Endpoint, r.Model, r.CustomID)
	}
	if r.Metadata != nil && !json.Valid(r.Metadata) {
		t.Errorf("line %d: metadata %q is not valid JSON", r.Line, r.Metadata)
	}
	if m, _ := jobs.Lookup(r.Body, "model"); string(m) != quote(r.Model) {
		t.Errorf("line %d: body has model %s, want %s", r.Line, m, quote(r.Model))
	}
	if r.Endpoint == jobs.EndpointEmbeddings {
		_, input := jobs.Lookup(r.Body, "input")
		_, stream := jobs.Lookup(r.Body, "stream")
		if !input || stream {
			t.Errorf("line %d: an embeddings body needs \"input\" and no \"stream\": %s", r.Line, r.Body)
		}
	}
	if r.Line < 1 || r.Line > len(physical) {
		t.Fatalf("request for line %d of a file of %d lines", r.Line, len(physical))
	}
	line := bytes.TrimPrefix(trimEOL(physical[r.Line-1]), bom)
	if _, envelope := jobs.Lookup(trimSpace(line), "body"); envelope {
		return
	}
	for _, k := range []string{"custom_id", "metadata"} {
		if _, ok := jobs.Lookup(r.Body, k); ok {
			t.Errorf("line %d: bare body still has %q: %s", r.Line, k, r.Body)
		}
	}
}

func countNonBlank(physical [][]byte) int {
	n := 0
	for i, l := range physical {
		if i == 0 {
			l = bytes.TrimPrefix(l, bom)
		}
		if len(bytes.TrimSpace(l)) > 0 {
			n++
		}
	}
	return n
}
