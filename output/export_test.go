package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// export writes recs in format f and returns what went to out and to errs
// (errs only when split).
func export(t *testing.T, f Format, recs []jobs.Record, split bool) (out, errs string, c ExportCounts) {
	t.Helper()
	var o, e bytes.Buffer
	var ew io.Writer
	if split {
		ew = &e
	}
	x := NewExporter(f, "eval-2025", &o, ew)
	for _, r := range recs {
		if err := x.Write(r); err != nil {
			t.Fatalf("Write(%s): %v", r.Request.CustomID, err)
		}
	}
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), x.Counts()
}

func TestExportGolden(t *testing.T) {
	for _, f := range []Format{FormatOpenAI, FormatFlat} {
		t.Run(string(f), func(t *testing.T) {
			out, _, c := export(t, f, fixtureRecords(), false)
			golden(t, "export_"+string(f)+".jsonl", []byte(out))
			want := ExportCounts{Succeeded: 4, Failed: 5, Cancelled: 1, Unfinished: 2}
			if c != want {
				t.Errorf("counts = %+v, want %+v", c, want)
			}
			for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if !json.Valid([]byte(line)) {
					t.Errorf("line %d is not valid JSON: %s", i+1, line)
				}
			}
		})
	}
}

func TestExportErrorsRouting(t *testing.T) {
	for _, f := range []Format{FormatOpenAI, FormatFlat} {
		t.Run(string(f), func(t *testing.T) {
			out, errs, c := export(t, f, fixtureRecords(), true)
			wantOut := []string{"chat-ok", "completion-ok", "with-metadata", "pretty-printed"}
			wantErrs := []string{"bad-request", "network-down", "cancelled", "bad-gateway", "server-empty", "invalid-line"}
			if got := customIDs(t, out); !equal(got, wantOut) {
				t.Errorf("out has %q, want %q", got, wantOut)
			}
			if got := customIDs(t, errs); !equal(got, wantErrs) {
				t.Errorf("errs has %q, want %q", got, wantErrs)
			}
			if want := (ExportCounts{Succeeded: 4, Failed: 5, Cancelled: 1, Unfinished: 2}); c != want {
				t.Errorf("counts = %+v, want %+v", c, want)
			}
			// Split or not, a request's line is the same.
			all, _, _ := export(t, f, fixtureRecords(), false)
			if got := sortedLines(out + errs); got != sortedLines(all) {
				t.Errorf("split lines differ from unsplit ones:\n%s\nvs\n%s", got, sortedLines(all))
			}
		})
	}
}

func customIDs(t *testing.T, jsonl string) []string {
	t.Helper()
	var ids []string
	dec := json.NewDecoder(strings.NewReader(jsonl))
	for dec.More() {
		var v struct {
			CustomID string `json:"custom_id"`
		}
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decode %q: %v", jsonl, err)
		}
		ids = append(ids, v.CustomID)
	}
	return ids
}

func equal(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i := range lines {
		for j := i + 1; j < len(lines); j++ {
			if lines[j] < lines[i] {
				lines[i], lines[j] = lines[j], lines[i]
			}
		}
	}
	return strings.Join(lines, "\n")
}

// objectKeys returns the member names of the JSON object raw in order, or
// nil for null.
func objectKeys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	if string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestExportOpenAIShape(t *testing.T) {
	recs := fixtureRecords()
	out, _, _ := export(t, FormatOpenAI, recs, false)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var written []jobs.Record
	for _, r := range recs {
		if r.Request.Status.Final() {
			written = append(written, r)
		}
	}
	if len(lines) != len(written) {
		t.Fatalf("%d lines for %d finished requests", len(lines), len(written))
	}
	for i, line := range lines {
		rec := written[i]
		t.Run(rec.Request.CustomID, func(t *testing.T) {
			want := []string{"id", "custom_id", "response", "error"}
			if rec.Request.Metadata != nil {
				want = append(want, "metadata")
			}
			if got := objectKeys(t, json.RawMessage(line)); !equal(got, want) {
				t.Errorf("keys %q, want %q", got, want)
			}
			var v struct {
				ID       string
				Response json.RawMessage
				Error    json.RawMessage
			}
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("batch_req_eval-2025_%d", rec.Request.ID); v.ID != want {
				t.Errorf("id %q, want %q", v.ID, want)
			}
			gotResp := objectKeys(t, v.Response)
			noAnswer := rec.Result == nil && (rec.Failure == nil || rec.Failure.StatusCode == 0)
			if noAnswer && gotResp != nil {
				t.Errorf("response %s, want null", v.Response)
			}
			if !noAnswer && !equal(gotResp, []string{"status_code", "request_id", "body"}) {
				t.Errorf("response keys %q", gotResp)
			}
			// As OpenAI's Batch API: error is set only without an HTTP answer.
			if noAnswer == (string(v.Error) == "null") {
				t.Errorf("error %s for status %s with response %s", v.Error, rec.Request.Status, v.Response)
			}
			if f := rec.Failure; f != nil && f.StatusCode != 0 {
				var r struct {
					RequestID *string `json:"request_id"`
				}
				if err := json.Unmarshal(v.Response, &r); err != nil || r.RequestID == nil || *r.RequestID != f.RequestID {
					t.Errorf("response %s, want request_id %q", v.Response, f.RequestID)
				}
			}
		})
	}
}

// TestExportVerbatim checks that raw JSON is embedded byte for byte (number
// spelling, spaces, key order), and that pretty-printed JSON is compacted.
func TestExportVerbatim(t *testing.T) {
	recs := fixtureRecords()
	for _, f := range []Format{FormatOpenAI, FormatFlat} {
		out, _, _ := export(t, f, recs, false)
		if want := `"metadata":{"split": "test", "idx":7,"weight":1.50}}` + "\n"; !strings.Contains(out, want) {
			t.Errorf("%s: metadata not verbatim, want %s in\n%s", f, want, out)
		}
	}
	out, _, _ := export(t, FormatOpenAI, recs, false)
	if want := `"body":` + chatRaw + `}`; !strings.Contains(out, want) {
		t.Errorf("chat body not verbatim in\n%s", out)
	}
	if want := `"body":` + badRequestBody + `}`; !strings.Contains(out, want) {
		t.Errorf("error body not verbatim in\n%s", out)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(prettyRaw)); err != nil {
		t.Fatal(err)
	}
	if want := `"body":` + compact.String() + `}`; !strings.Contains(out, want) {
		t.Errorf("pretty body not compacted to %s in\n%s", compact.String(), out)
	}
	if !strings.Contains(compact.String(), `"total_tokens":5.0`) {
		t.Errorf("compaction changed a number: %s", compact.String())
	}
}

func TestExportRejects(t *testing.T) {
	ok := fixtureRecords()[0]
	noResult := ok
	noResult.Result = nil
	noFailure := fixtureRecords()[2]
	noFailure.Failure = nil
	badStatus := ok
	badStatus.Request.Status = "done"
	emptyRaw, badRaw := ok, ok
	emptyRaw.Result = &jobs.Result{}
	badRaw.Result = &jobs.Result{Raw: json.RawMessage("{\n\"a\":}")}
	badMeta := ok
	badMeta.Request.Metadata = json.RawMessage("{\n")
	tests := []struct {
		name string
		rec  jobs.Record
		want string
	}{
		{"SucceededWithoutResult", noResult, `export request "chat-ok": succeeded without a result`},
		{"FailedWithoutFailure", noFailure, `export request "bad-request": failed without an error`},
		{"UnknownStatus", badStatus, `export request "chat-ok": unknown status "done"`},
		{"EmptyBody", emptyRaw, `export request "chat-ok": response body: empty JSON value`},
		{"InvalidPrettyBody", badRaw, `export request "chat-ok": response body: invalid character '}' looking for beginning of value`},
		{"InvalidMetadata", badMeta, `export request "chat-ok": metadata: unexpected end of JSON input`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			x := NewExporter(FormatOpenAI, "j", &out, nil)
			err := x.Write(tt.rec)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Write = %v, want %s", err, tt.want)
			}
			if err := x.Flush(); err != nil || out.Len() != 0 {
				t.Errorf("wrote %q (flush: %v) for a rejected record", out.String(), err)
			}
			if c := x.Counts(); c.Written() != 0 {
				t.Errorf("counts %+v after a rejected record", c)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestExportWriterError(t *testing.T) {
	x := NewExporter(FormatFlat, "j", failingWriter{}, nil)
	if err := x.Write(fixtureRecords()[0]); err != nil {
		t.Fatalf("buffered Write failed early: %v", err)
	}
	if err := x.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Flush = %v, want disk full", err)
	}
	x = NewExporter(FormatFlat, "j", io.Discard, failingWriter{})
	_ = x.Write(fixtureRecords()[2])
	if err := x.Flush(); err == nil || !strings.Contains(err.Error(), "export errors: disk full") {
		t.Errorf("Flush = %v, want the errors writer's error", err)
	}
}

func TestParseFormat(t *testing.T) {
	for _, s := range []string{"openai", "flat", "merged", "csv", "parquet"} {
		if f, err := ParseFormat(s); err != nil || string(f) != s {
			t.Errorf("ParseFormat(%q) = %q, %v", s, f, err)
		}
	}
	for _, s := range []string{"", "tsv", "OpenAI", "Parquet"} {
		want := fmt.Sprintf("unknown format %q (want openai, flat, merged, csv or parquet)", s)
		if _, err := ParseFormat(s); err == nil || err.Error() != want {
			t.Errorf("ParseFormat(%q) error = %v, want %s", s, err, want)
		}
	}
}

func BenchmarkExportOpenAI(b *testing.B) {
	benchmarkExport(b, FormatOpenAI)
}

func BenchmarkExportFlat(b *testing.B) {
	benchmarkExport(b, FormatFlat)
}

func BenchmarkExportCSV(b *testing.B) {
	benchmarkExport(b, FormatCSV)
}

func BenchmarkExportParquet(b *testing.B) {
	benchmarkExport(b, FormatParquet)
}

func benchmarkExport(b *testing.B, f Format) {
	rec := fixtureRecords()[0]
	rec.Request.Metadata = json.RawMessage(`{"split":"test","idx":7}`)
	rec.Result.Content = strings.Repeat("The quick brown fox jumps over the lazy dog. ", 20)
	var n countingWriter
	x := NewExporter(f, "eval-2025", bufio.NewWriter(&n), nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rec.Request.ID = int64(i)
		if err := x.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := x.Flush(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n.n / int64(b.N))
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
