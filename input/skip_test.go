package input

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

func TestReaderSkipInvalid(t *testing.T) {
	huge := `{"model":"m","prompt":"` + strings.Repeat("x", 100<<10) + `","temperature":9}`
	src := []string{
		ok,
		`{"model":"m","prompt":"p",}`,
		`{"custom_id":"t","model":"m","messages":[{"role":"user","content":"x"}],"temperature":3,"metadata":{"k":1}}`,
		``,
		`{"custom_id":"q","model":"m"}`,
		huge,
		`{"custom_id":7,"model":"m","prompt":"p"}`,
		ok,
	}
	path := writeInput(t, lines(src...))
	reqs, fp, err := readAll(t, path, Options{SkipInvalid: true})
	if err != nil {
		t.Fatalf("Err() = %v, want nil: --skip-invalid keeps invalid lines", err)
	}
	type row struct {
		line     int
		id       string
		status   jobs.Status
		invalid  string // the reason, after "PATH:LINE: "
		endpoint jobs.Endpoint
		meta     string
	}
	want := []row{
		{1, "line-1", jobs.StatusPending, "", jobs.EndpointCompletions, ""},
		{2, "line-2", jobs.StatusFailed, "invalid JSON: invalid character '}' looking for beginning of object key string (column 27)", jobs.EndpointChat, ""},
		{3, "t", jobs.StatusFailed, `"temperature" must be a number from 0 to 2, got 3`, jobs.EndpointChat, `{"k":1}`},
		{5, "q", jobs.StatusFailed, `no "messages" (chat) or "prompt" (completions)`, jobs.EndpointChat, ""},
		{6, "line-6", jobs.StatusFailed, `"temperature" must be a number from 0 to 2, got 9`, jobs.EndpointCompletions, ""},
		{7, "line-7", jobs.StatusFailed, `"custom_id" must be a non-empty string, got number`, jobs.EndpointChat, ""},
		{8, "line-8", jobs.StatusPending, "", jobs.EndpointCompletions, ""},
	}
	if len(reqs) != len(want) {
		t.Fatalf("got %d requests, want %d: %+v", len(reqs), len(want), summarize(reqs))
	}
	for i, w := range want {
		r := reqs[i]
		reason := strings.TrimPrefix(r.Invalid, fmt.Sprintf("%s:%d: ", path, w.line))
		if r.Invalid == "" {
			reason = ""
		}
		got := row{r.Line, r.CustomID, r.Status, reason, r.Endpoint, string(r.Metadata)}
		if got != w {
			t.Errorf("request %d:\ngot  %+v\nwant %+v", i, got, w)
		}
		if w.invalid == "" {
			continue
		}
		if !strings.HasPrefix(r.Invalid, fmt.Sprintf("%s:%d: ", path, w.line)) {
			t.Errorf("line %d: Invalid = %q, want it to start with FILE:LINE", w.line, r.Invalid)
		}
		wantBody := src[w.line-1]
		if len(wantBody) > maxInvalidBody {
			wantBody = wantBody[:maxInvalidBody]
		}
		if string(r.Body) != wantBody {
			t.Errorf("line %d: body is %d bytes %.40q…, want the line's first %d bytes", w.line, len(r.Body), r.Body, len(wantBody))
		}
	}
	// The flag decides how the file becomes a job, not which job it is.
	if plain, _ := Fingerprint(path, Options{}); fp != plain {
		t.Errorf("fingerprint with --skip-invalid %s, want the file's %s", fp, plain)
	}
}

func TestReaderSkipInvalidRefusesTheFile(t *testing.T) {
	tests := []struct {
		name, content string
		file          bool   // a *FileError
		want          string // its message (or a line of the list)
	}{
		{"NoValidLine", lines(`a,b,c`, `1,2,3`), false, "TMP/in.jsonl: no valid line; --skip-invalid imports a file only when some of its lines are valid"},
		{"Empty", "", true, "TMP/in.jsonl: no requests (the file is empty)"},
		{"Binary", lines(ok, "\x00\x01"), true, "TMP/in.jsonl:2: binary data (NUL byte), not a JSONL file"},
		{"NotUTF8", lines(ok, `{`, `{"model":"m","prompt":"`+"\xff"+`"}`), true,
			"TMP/in.jsonl:3: not valid UTF-8 (column 24): the file is not UTF-8 text; convert it to UTF-8 (for example with iconv)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeInput(t, tc.content)
			_, _, err := readAll(t, path, Options{SkipInvalid: true})
			var ve *jobs.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Err() = %v, want a *jobs.ValidationError", err)
			}
			var fe *FileError
			if errors.As(err, &fe) != tc.file {
				t.Errorf("Err() is a *FileError: %v, want %v", !tc.file, tc.file)
			}
			msg := strings.ReplaceAll(err.Error(), filepath.Dir(path), "TMP")
			if tc.file && msg != tc.want {
				t.Errorf("got %q, want exactly %q", msg, tc.want)
			}
			if !tc.file && !strings.Contains(msg, tc.want+"\n") {
				t.Errorf("got %q, want a line %q", msg, tc.want)
			}
		})
	}
}

// A sample of an invalid line would be the same failure k times: it is
// kept once, under its own custom_id, without a cache key.
func TestSamplesKeepInvalidOnce(t *testing.T) {
	path := writeInput(t, lines(`{"custom_id":"a","model":"m","prompt":"p"}`, `{"custom_id":"b","model":"m"}`))
	r, err := Open(path, Options{SkipInvalid: true})
	if err != nil {
		t.Fatal(err)
	}
	s := WithSamples(r, 3)
	defer s.Close()
	if !s.KeepsInvalid() {
		t.Error("KeepsInvalid() = false through Samples")
	}
	var got []string
	for {
		req, err := s.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %t", req.CustomID, req.Status, req.CacheKey != ""))
	}
	want := "a#0 pending true|a#1 pending true|a#2 pending true|b failed false"
	if strings.Join(got, "|") != want {
		t.Errorf("got %s\nwant %s", strings.Join(got, "|"), want)
	}
}

func TestDatasetSkipInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.csv")
	if err := os.WriteFile(path, []byte("q,id\nfirst,x\nonly-one-field\nthird,z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reqs, err, _ := readDataset(t, path, DatasetOptions{Format: FormatCSV, Template: mustParse(t, "t", "{{.q}}"),
		Model: "m", IDField: "id", SkipInvalid: true})
	if err != nil {
		t.Fatalf("Err() = %v, want nil", err)
	}
	var got []string
	for _, r := range reqs {
		got = append(got, fmt.Sprintf("%s %s %q", r.CustomID, r.Status, strings.TrimPrefix(r.Invalid, path)))
	}
	want := `x pending ""|row-2 failed ":3: 1 field, but the header has 2"|z pending ""`
	if strings.Join(got, "|") != want {
		t.Errorf("got %s\nwant %s", strings.Join(got, "|"), want)
	}
}

// FuzzReaderSkipInvalid: with --skip-invalid every non-blank line becomes
// exactly one request (valid, or failed with its FILE:LINE), unless the file
// as a whole is refused; and the fingerprint is the plain reader's.
func FuzzReaderSkipInvalid(f *testing.F) {
	for _, s := range []string{lines(ok, `{`, hiBody), lines(`{"model":"e","input":["a"]}`, `{"model":"e","input":""}`), "[1]\n\"x\"\n{\n", lines(ok, ok), "\xff\n" + ok, ""} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "fuzz.jsonl")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		reqs, fp, err := readAll(t, path, Options{SkipInvalid: true})
		var ve *jobs.ValidationError
		if err != nil {
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want nil or a *jobs.ValidationError", err)
			}
			return
		}
		physical := bytes.Split(data, []byte("\n"))
		if n := countNonBlank(physical); len(reqs) != n {
			t.Errorf("got %d requests for %d non-blank lines", len(reqs), n)
		}
		valid := 0
		for _, r := range reqs {
			if r.Invalid == "" {
				valid++
				checkRequest(t, r, physical)
				continue
			}
			if r.Status != jobs.StatusFailed || !strings.HasPrefix(r.Invalid, fmt.Sprintf("%s:%d: ", path, r.Line)) || r.CustomID == "" {
				t.Errorf("invalid line %d: status %s, custom_id %q, message %q", r.Line, r.Status, r.CustomID, r.Invalid)
			}
		}
		if valid == 0 {
			t.Errorf("no valid line, and no error")
		}
		if want, _ := Fingerprint(path, Options{}); fp != want {
			t.Errorf("Reader.Fingerprint() = %q, Fingerprint() = %q", fp, want)
		}
	})
}
