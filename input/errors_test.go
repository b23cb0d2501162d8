package input

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// ok is a valid line. Bad-input cases put one after the bad lines: it is
// handed out all the same, unless the file as a whole is invalid.
const ok = `{"model":"m","prompt":"p"}`

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func msgs(m string) string { return `{"model":"m","messages":` + m + `}` }

func manyBadLines(n int) string {
	var b strings.Builder
	for range n {
		b.WriteString("{\n")
	}
	return b.String()
}

var badInputs = []struct {
	name    string
	content string
	opts    Options
}{
	{"InvalidJSON", lines(ok, `{"model":"m","messages":[}`, `{"model":"m",}`, `{'model':'m'}`, `{"model":"m"`, ok), Options{}},
	{"NotAnObject", lines(`[1,2]`, `"text"`, `3.5`, `true`, `null`, ok), Options{}},
	{"MissingModel", lines(`{"messages":[{"role":"user","content":"hi"}]}`, ok), Options{}},
	{"MissingMessagesAndPrompt", lines(`{"model":"m","inputs":"hi"}`, `{}`, ok), Options{}},
	{"MessagesAndPrompt", lines(`{"model":"m","prompt":"p","messages":[]}`, ok), Options{}},
	{"WrongTypes", lines(
		`{"model":"m","prompt":"p","temperature":"0.7"}`,
		`{"model":"m","prompt":"p","max_tokens":1.5}`,
		`{"model":"m","prompt":"p","max_tokens":"100"}`,
		`{"model":"m","prompt":"p","stop":["a","b","c","d","e"]}`,
		`{"model":"m","prompt":"p","stop":["a",1]}`,
		`{"model":"m","prompt":"p","stop":7}`,
		`{"custom_id":7,"model":"m","prompt":"p"}`,
		`{"model":7,"prompt":"p"}`,
		`{"model":"","prompt":"p"}`,
		`{"model":"m","prompt":"p","stream":"yes"}`,
		`{"model":"m","prompt":"p","logit_bias":[1]}`,
		`{"model":"m","prompt":"p","n":true}`,
		ok), Options{}},
	{"OutOfRange", lines(
		`{"model":"m","prompt":"p","temperature":3.5}`,
		`{"model":"m","prompt":"p","temperature":-0.1}`,
		`{"model":"m","prompt":"p","temperature":1e400}`,
		`{"model":"m","prompt":"p","top_p":1.01}`,
		`{"model":"m","prompt":"p","min_p":2}`,
		`{"model":"m","prompt":"p","top_k":-2}`,
		`{"model":"m","prompt":"p","max_tokens":0}`,
		`{"model":"m","prompt":"p","n":129}`,
		`{"model":"m","prompt":"p","presence_penalty":-2.5}`,
		`{"model":"m","prompt":"p","frequency_penalty":2.01}`,
		`{"model":"m","prompt":"p","repetition_penalty":0}`,
		`{"model":"m","prompt":"p","repetition_penalty":2.5}`,
		`{"model":"m","prompt":"p","logit_bias":{"50256":-101}}`,
		`{"model":"m","prompt":"p","logit_bias":{"1":"x"}}`,
		ok), Options{}},
	{"BadMessages", lines(
		msgs(`[]`),
		msgs(`{"role":"user","content":"hi"}`),
		msgs(`["hi"]`),
		msgs(`[{"content":"hi"}]`),
		msgs(`[{"role":"bot","content":"hi"}]`),
		msgs(`[{"role":1,"content":"hi"}]`),
		msgs(`[{"role":"user","content":"a"},{"role":"user"}]`),
		msgs(`[{"role":"user","content":7}]`),
		msgs(`[{"role":"user","content":null}]`),
		msgs(`[{"role":"assistant"}]`),
		ok), Options{}},
	{"BadPrompt", lines(
		`{"model":"m","prompt":{}}`,
		`{"model":"m","prompt":[]}`,
		`{"model":"m","prompt":["a",1]}`,
		`{"model":"m","prompt":[1,-2]}`,
		`{"model":"m","prompt":[1,2.5]}`,
		`{"model":"m","prompt":[[1],[]]}`,
		`{"model":"m","prompt":[[1],2]}`,
		`{"model":"m","prompt":[{"text":"a"}]}`,
		ok), Options{}},
	{"BadBatchLines", lines(
		`{"custom_id":"a","method":"POST","url":"/v1/images/generations","body":{"model":"m","input":"x"}}`,
		`{"custom_id":"b","method":"GET","url":"/v1/completions","body":{"model":"m","prompt":"p"}}`,
		`{"custom_id":"c","url":"/v1/chat/completions","body":{"model":"m","prompt":"p"}}`,
		`{"custom_id":"d","url":"/v1/completions","body":{"model":"m","messages":[]}}`,
		`{"custom_id":"e","url":"/v1/completions","bdy":{"model":"m","prompt":"p"}}`,
		`{"custom_id":"f","url":"/v1/completions","body":{"model":"m","prompt":"p"},"extra":1}`,
		`{"custom_id":"g","body":"{\"model\":\"m\"}"}`,
		`{"custom_id":"h","url":7,"body":{"model":"m","prompt":"p"}}`,
		`{"custom_id":"i","body":{"model":"m","prompt":"p","model":"n"}}`,
		ok), Options{DefaultModel: "dm"}},
	{"BadCustomID", lines(
		`{"custom_id":"","model":"m","prompt":"p"}`,
		`{"custom_id":"`+strings.Repeat("x", 513)+`","model":"m","prompt":"p"}`,
		`{"custom_id":null,"model":"m","prompt":"p"}`,
		`{"custom_id":"a","custom_id":"b","model":"m","prompt":"p"}`,
		ok), Options{}},
	// A file in another encoding has such bytes on many lines: one line
	// names the first and says what to do.
	{"NotUTF8", lines(ok, `{"model":"m","prompt":"caf`+"\xe9"+`"}`, `{"model":"m","prompt":"na`+"\xefve"+`"}`, ok), Options{}},
	{"BinaryFile", lines(ok, "{\"model\":\"m\x00", `{"model":"m",`, ok), Options{}},
	// The file-level reason is the whole message, even after invalid lines
	// and with --skip-invalid.
	{"BinaryAfterInvalid", lines(`{`, ok, "\x7fELF\x02\x01\x01\x00\x00"), Options{SkipInvalid: true}},
	{"UTF16File", "\xFF\xFE{\x00\"\x00m\x00\"\x00:\x001\x00}\x00\n\x00", Options{}},
	{"EmptyFile", "", Options{}},
	{"OnlyBOM", "\xEF\xBB\xBF", Options{}},
	{"OnlyBlankLines", "\n  \r\n\t\n", Options{}},
	{"TooManyErrors", manyBadLines(60) + ok + "\n", Options{}},
}

func TestReaderBadInput(t *testing.T) {
	for _, tc := range badInputs {
		t.Run(tc.name, func(t *testing.T) {
			path := writeInput(t, tc.content)
			reqs, _, err := readAll(t, path, tc.opts)
			checkHandedOut(t, []byte(tc.content), reqs, err)
			golden(t, tc.name, strings.ReplaceAll(err.Error(), filepath.Dir(path), "TMP"))
		})
	}
}

// checkHandedOut asserts that err is a *jobs.ValidationError and that the
// reader of data handed out exactly its valid lines: none that err lists,
// and, unless reading stopped at a line that fails the whole file (a
// *FileError), every other non-blank line, also after the first error, so
// that the store can find the custom_ids used twice among them.
func checkHandedOut(t *testing.T, data []byte, reqs []jobs.Request, err error) {
	t.Helper()
	var verr *jobs.ValidationError
	if !errors.As(err, &verr) || len(verr.Errors) == 0 {
		t.Fatalf("got error %v, want a *jobs.ValidationError", err)
	}
	bad := map[int]bool{}
	for _, e := range verr.Errors {
		bad[e.Line] = true
	}
	var fe *FileError
	stop := 0 // the line that ended reading, if any
	if errors.As(err, &fe) {
		stop = max(fe.Errors[0].Line, 1)
	}
	got := map[int]bool{}
	for _, r := range reqs {
		got[r.Line] = true
		if r.Invalid != "" {
			continue // with SkipInvalid
		}
		if bad[r.Line] || stop > 0 && r.Line >= stop {
			t.Errorf("got a request for line %d, which is invalid or after the end of reading at line %d", r.Line, stop)
		}
	}
	if stop > 0 || verr.Total > len(verr.Errors) {
		return // unread or unlisted invalid lines
	}
	for i, l := range bytes.Split(data, []byte("\n")) {
		if i == 0 {
			l = bytes.TrimPrefix(l, bom)
		}
		if n := i + 1; len(bytes.TrimSpace(l)) > 0 && !bad[n] && !got[n] {
			t.Errorf("line %d is valid, after an invalid one, and was not handed out", n)
		}
	}
}

func TestOpenBadPath(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, path string }{
		{"Directory", dir},
		{"MissingFile", filepath.Join(dir, "missing.jsonl")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Open(tc.path, Options{})
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded, want an error")
			}
			_, ferr := Fingerprint(tc.path, Options{})
			if ferr == nil || ferr.Error() != err.Error() {
				t.Errorf("Fingerprint: got error %v, want %v", ferr, err)
			}
			golden(t, tc.name, strings.ReplaceAll(err.Error(), dir, "TMP"))
		})
	}
}

// golden compares got with testdata/golden/NAME.golden, or rewrites the
// file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".golden")
	got += "\n"
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("error text differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
