package input

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// writeInput writes content to a new file in a temporary directory and
// returns its path.
func writeInput(tb testing.TB, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// readAll opens path and drains it. err is Open's error, Next's read error
// or Err() after io.EOF; fp is the reader's fingerprint.
func readAll(tb testing.TB, path string, opts Options) (reqs []jobs.Request, fp string, err error) {
	tb.Helper()
	r, err := Open(path, opts)
	if err != nil {
		return nil, "", err
	}
	defer r.Close()
	for {
		req, err := r.Next()
		if err == io.EOF {
			return reqs, r.Fingerprint(), r.Err()
		}
		if err != nil {
			return reqs, "", err
		}
		reqs = append(reqs, req)
	}
}

// want is the part of a request a test cares about.
type want struct {
	Line     int
	CustomID string
	Endpoint jobs.Endpoint
	Model    string
	Body     string
	Metadata string
}

func summarize(reqs []jobs.Request) []want {
	var out []want
	for _, r := range reqs {
		out = append(out, want{r.Line, r.CustomID, r.Endpoint, r.Model, string(r.Body), string(r.Metadata)})
	}
	return out
}

const (
	chat   = jobs.EndpointChat
	compl  = jobs.EndpointCompletions
	hi     = `[{"role":"user","content":"hi"}]`
	hiBody = `{"model":"m","messages":` + hi + `}`
)

func TestReaderValid(t *testing.T) {
	tests := []struct {
		name    string
		content string
		model   string
		want    []want
	}{
		{"BareChat", hiBody + "\n", "",
			[]want{{1, "line-1", chat, "m", hiBody, ""}}},
		{"BareCompletions", `{"model":"m","prompt":"Once upon"}` + "\n", "",
			[]want{{1, "line-1", compl, "m", `{"model":"m","prompt":"Once upon"}`, ""}}},
		{"BatchChat", `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":` + hiBody + "}\n", "",
			[]want{{1, "a", chat, "m", hiBody, ""}}},
		{"BatchCompletionsShortURL", `{"custom_id":"b","url":"/completions","body": {"prompt":[1,2],"model":"m"} }` + "\n", "",
			[]want{{1, "b", compl, "m", `{"prompt":[1,2],"model":"m"}`, ""}}},
		{"BatchNoURL", `{"body":{"model":"m","prompt":["a","b"]}}` + "\n" + `{"body":` + hiBody + `,"url":"/chat/completions"}`, "",
			[]want{
				{1, "line-1", compl, "m", `{"model":"m","prompt":["a","b"]}`, ""},
				{2, "line-2", chat, "m", hiBody, ""},
			}},
		{"BatchMetadataKept", `{"custom_id":"c","metadata":{"k":[1, 2.50]},"body":` + hiBody + "}\n", "",
			[]want{{1, "c", chat, "m", hiBody, `{"k":[1, 2.50]}`}}},
		{"BatchBodyKeepsCustomID", `{"custom_id":"c","body":{"custom_id":"inner","model":"m","prompt":"p"}}`, "",
			[]want{{1, "c", compl, "m", `{"custom_id":"inner","model":"m","prompt":"p"}`, ""}}},
		{"BOMAndCRLF", "\xEF\xBB\xBF" + hiBody + "\r\n" + `{"model":"m","prompt":"p"}` + "\r\n", "",
			[]want{
				{1, "line-1", chat, "m", hiBody, ""},
				{2, "line-2", compl, "m", `{"model":"m","prompt":"p"}`, ""},
			}},
		{"BlankLinesCounted", "\n  \n" + hiBody + "\n\t\r\n\n" + hiBody + "\n\n", "",
			[]want{
				{3, "line-3", chat, "m", hiBody, ""},
				{6, "line-6", chat, "m", hiBody, ""},
			}},
		{"NoTrailingNewline", hiBody + "\n" + `{"model":"m","prompt":"last"}`, "",
			[]want{
				{1, "line-1", chat, "m", hiBody, ""},
				{2, "line-2", compl, "m", `{"model":"m","prompt":"last"}`, ""},
			}},
		{"SpaceAroundObject", " \t" + hiBody + "  \n", "",
			[]want{{1, "line-1", chat, "m", hiBody, ""}}},
		{"BareStripsCustomIDAndMetadata",
			`{"custom_id": "x1", "temperature": 1e-5, "metadata": {"b":2, "a":1}, "top_p": 0.10, "model": "m", "seed": 12345678901234567890, "messages": ` + hi + `}` + "\n", "",
			[]want{{1, "x1", chat, "m",
				`{"temperature": 1e-5,"top_p": 0.10,"model": "m","seed": 12345678901234567890,"messages": ` + hi + `}`,
				`{"b":2, "a":1}`}}},
		{"BareMetadataNull", `{"model":"m","metadata":null,"prompt":"p"}`, "",
			[]want{{1, "line-1", compl, "m", `{"model":"m","prompt":"p"}`, ""}}},
		{"BareEscapedCustomIDKey", `{"custom\u005fid":"e","model":"m","prompt":"p"}`, "",
			[]want{{1, "e", compl, "m", `{"model":"m","prompt":"p"}`, ""}}},
		{"DefaultModelSpliced", `{"messages":` + hi + `,"temperature":0.7}`, "dm",
			[]want{{1, "line-1", chat, "dm", `{"model":"dm","messages":` + hi + `,"temperature":0.7}`, ""}}},
		{"DefaultModelAfterStrip", `{"custom_id":"s","prompt":"p"}`, "dm",
			[]want{{1, "s", compl, "dm", `{"model":"dm","prompt":"p"}`, ""}}},
		{"DefaultModelInBatchBody", `{"custom_id":"d","body":{"prompt":"p"}}`, "dm",
			[]want{{1, "d", compl, "dm", `{"model":"dm","prompt":"p"}`, ""}}},
		{"DefaultModelNotUsed", hiBody, "dm",
			[]want{{1, "line-1", chat, "m", hiBody, ""}}},
		{"NullParametersPass", `{"model":"m","prompt":"p","temperature":null,"stop":null,"max_tokens":null}`, "",
			[]want{{1, "line-1", compl, "m", `{"model":"m","prompt":"p","temperature":null,"stop":null,"max_tokens":null}`, ""}}},
		{"ParametersAtTheirLimits",
			`{"model":"m","prompt":"p","temperature":2,"top_p":0,"top_k":-1,"min_p":1,"max_tokens":1e3,"n":128,"presence_penalty":-2,"frequency_penalty":2.0,"repetition_penalty":2,"stop":["a","b","c","d"],"logit_bias":{"50256":-100,"1":100},"stream":false}`, "",
			[]want{{1, "line-1", compl, "m",
				`{"model":"m","prompt":"p","temperature":2,"top_p":0,"top_k":-1,"min_p":1,"max_tokens":1e3,"n":128,"presence_penalty":-2,"frequency_penalty":2.0,"repetition_penalty":2,"stop":["a","b","c","d"],"logit_bias":{"50256":-100,"1":100},"stream":false}`, ""}}},
		{"UnknownFieldsPassThrough",
			`{"model":"m","messages":` + hi + `,"response_format":{"type":"json_object"},"tools":[],"x_vendor":[null]}`, "",
			[]want{{1, "line-1", chat, "m",
				`{"model":"m","messages":` + hi + `,"response_format":{"type":"json_object"},"tools":[],"x_vendor":[null]}`, ""}}},
		{"AssistantToolCallWithoutContent",
			`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","tool_calls":[]},{"role":"tool","content":"42","tool_call_id":"t"}]}`, "",
			[]want{{1, "line-1", chat, "m",
				`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","tool_calls":[]},{"role":"tool","content":"42","tool_call_id":"t"}]}`, ""}}},
		{"PromptTokenArrays", `{"model":"m","prompt":[[1,2],[3]]}`, "",
			[]want{{1, "line-1", compl, "m", `{"model":"m","prompt":[[1,2],[3]]}`, ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reqs, _, err := readAll(t, writeInput(t, tc.content), Options{DefaultModel: tc.model})
			if err != nil {
				t.Fatalf("unexpected error:\n%v", err)
			}
			got := summarize(reqs)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d requests, want %d:\n%+v", len(got), len(tc.want), got)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("request %d:\ngot  %+v\nwant %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestReaderHugeLine(t *testing.T) {
	content := strings.Repeat("x", 20<<20)
	body := `{"model":"m","messages":[{"role":"user","content":"` + content + `"}]}`
	path := writeInput(t, hiBody+"\n"+body+"\n"+hiBody)
	reqs, _, err := readAll(t, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 3 {
		t.Fatalf("got %d requests, want 3", len(reqs))
	}
	if got := reqs[1]; got.Line != 2 || string(got.Body) != body {
		t.Errorf("huge line: got line %d and a body of %d bytes, want line 2 and %d bytes", got.Line, len(got.Body), len(body))
	}
	if got := string(reqs[2].Body); got != hiBody {
		t.Errorf("line after the huge one: got %s, want %s", got, hiBody)
	}
}

// TestReaderBodiesAreFresh reads lines across many buffer refills and only
// then compares: a body aliasing the read buffer would have been overwritten.
func TestReaderBodiesAreFresh(t *testing.T) {
	var b strings.Builder
	var wantBodies []string
	for i := range 3000 {
		body := `{"model":"m","prompt":"` + strings.Repeat(string(rune('a'+i%26)), 100+i%50) + `"}`
		wantBodies = append(wantBodies, body)
		b.WriteString(`{"custom_id":"` + strings.Repeat("i", 1+i%7) + string(rune('A'+i%26)) + `","body":` + body + `,"metadata":[` + strings.Repeat("1,", i%9) + "0]}\n")
	}
	reqs, _, err := readAll(t, writeInput(t, b.String()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != len(wantBodies) {
		t.Fatalf("got %d requests, want %d", len(reqs), len(wantBodies))
	}
	for i, r := range reqs {
		if string(r.Body) != wantBodies[i] {
			t.Fatalf("line %d: got body %s, want %s", i+1, r.Body, wantBodies[i])
		}
		if want := "[" + strings.Repeat("1,", i%9) + "0]"; string(r.Metadata) != want {
			t.Fatalf("line %d: got metadata %s, want %s", i+1, r.Metadata, want)
		}
	}
}

// TestReaderReject plays the store: it rejects a duplicate custom_id, after
// which the valid lines are still handed out (to find more duplicates), and
// the errors come back in line order.
func TestReaderReject(t *testing.T) {
	path := writeInput(t, `{"custom_id":"a","model":"m","prompt":"p"}
{"custom_id":"a","model":"m","prompt":"p"}
{"custom_id":"b","model":"m","prompt":"p"}
{"model":"m"}
`)
	r, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var lines []int
	for {
		req, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, req.Line)
		if req.Line == 2 {
			r.Reject(2, `duplicate custom_id "a" (first used on line 1)`)
		}
	}
	r.Reject(3, "late rejection")
	if want := []int{1, 2, 3}; !equalInts(lines, want) {
		t.Errorf("got requests for lines %v, want %v", lines, want)
	}
	var verr *jobs.ValidationError
	if err := r.Err(); !errors.As(err, &verr) {
		t.Fatalf("got Err() = %v, want a *jobs.ValidationError", err)
	}
	got := strings.ReplaceAll(verr.Error(), path, "FILE")
	want := `FILE:2: duplicate custom_id "a" (first used on line 1)
FILE:3: late rejection
FILE:4: no "messages" (chat) or "prompt" (completions)`
	if got != want {
		t.Errorf("got Err():\n%s\nwant:\n%s", got, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOpenErrorsMatchOSErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.jsonl")
	_, err := Open(missing, Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want an error matching os.ErrNotExist", err)
	}
	if want := missing + ": no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestReaderNextAfterEOF(t *testing.T) {
	r, err := Open(writeInput(t, hiBody), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for range 3 {
		_, err = r.Next()
	}
	if err != io.EOF {
		t.Errorf("third Next: got %v, want io.EOF", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
