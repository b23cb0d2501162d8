package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

func exportMerged(t *testing.T, f *MergedFields, recs []jobs.Record) (string, error) {
	t.Helper()
	var out bytes.Buffer
	x := NewExporter(FormatMerged, "job", &out, nil)
	if f != nil {
		x.SetMergedFields(*f)
	}
	for _, r := range recs {
		if err := x.Write(r); err != nil {
			return out.String(), err
		}
	}
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String(), nil
}

func TestExportMergedGolden(t *testing.T) {
	out, err := exportMerged(t, nil, fixtureRecords())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "export_merged.jsonl", []byte(out))
}

// records whose bytes the merged export must keep: nested objects, unicode
// (raw and escaped), number spellings, white space, an empty object.
var mergedRecords = []string{
	`{"id": 17, "question": "Combien font 7 × 6 ?", "meta": {"tags": ["a", {"deep": [1.50, -0.0, 1e-7, 12345678901234567890]}], "none": null}, "flag": true}`,
	`{"topic":"black holes","level":"expert","notes":"multi\nline \"quoted\" note \u00e9 \ud83d\ude00 <b>&</b>"}`,
	`{}`,
	`{ "spaced" : 1.0 , "trailing" : "x" }`,
	`{"text":"What is 2 + 2?"}`,
}

func succeededWith(i int, meta, content string) jobs.Record {
	r := req(int64(i+1), "rec-"+string(rune('a'+i)), jobs.StatusSucceeded)
	r.Metadata = json.RawMessage(meta)
	return jobs.Record{Request: r, Result: &jobs.Result{RequestID: r.ID, StatusCode: 200, Raw: json.RawMessage(`{}`),
		Content: content, ReasoningContent: "because", FinishReason: "stop", Latency: time.Second,
		Usage: jobs.Usage{Known: true, PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5}}}
}

// TestExportMergedRoundTrip checks that every record comes back byte for
// byte, followed only by the added members, in input order.
func TestExportMergedRoundTrip(t *testing.T) {
	var recs []jobs.Record
	for i, m := range mergedRecords {
		recs = append(recs, succeededWith(i, m, "answer é "+string(rune('0'+i))))
	}
	out, err := exportMerged(t, nil, recs)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(mergedRecords) {
		t.Fatalf("%d lines, want %d", len(lines), len(mergedRecords))
	}
	for i, l := range lines {
		rec := mergedRecords[i]
		body := strings.TrimSuffix(strings.TrimSpace(rec), "}")
		if !strings.HasPrefix(l, body) {
			t.Errorf("line %d does not start with the record's own bytes:\n got %s\nwant %s…", i, l, body)
		}
		sep := ","
		if rec == "{}" {
			sep = ""
		}
		want := body + sep + `"answer":"answer é ` + string(rune('0'+i)) + `","reasoning":"because",` +
			`"usage":{"prompt_tokens":3,"completion_tokens":2,"reasoning_tokens":0,"cached_tokens":0,"total_tokens":5},"status":"succeeded"}`
		if l != want {
			t.Errorf("line %d:\n got %s\nwant %s", i, l, want)
		}
		if !json.Valid([]byte(l)) {
			t.Errorf("line %d is not valid JSON", i)
		}
		// Decoded, the record's own fields are equal to the input's.
		var got, in map[string]any
		json.Unmarshal([]byte(l), &got)
		json.Unmarshal([]byte(rec), &in)
		for k, v := range in {
			if gb, _ := json.Marshal(got[k]); string(gb) != string(must(json.Marshal(v))) {
				t.Errorf("line %d: field %s = %s, want %s", i, k, gb, must(json.Marshal(v)))
			}
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestExportMergedFields(t *testing.T) {
	rec := succeededWith(0, `{"q":"x","answer":"gold"}`, "model's")
	failed := req(2, "bad", jobs.StatusFailed)
	failed.Metadata = json.RawMessage(`{"q":"y","answer":"gold2"}`)
	recs := []jobs.Record{rec, {Request: failed, Failure: &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "no"}}}

	if _, err := exportMerged(t, nil, recs); err == nil ||
		!strings.Contains(err.Error(), `the record already has a field "answer"; give the answer another name with --answer-field`) {
		t.Errorf("a record with an answer field: error %v", err)
	}
	f := MergedFields{Answer: "model_answer", Status: "state"} // no reasoning, no usage
	out, err := exportMerged(t, &f, recs)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"q":"x","answer":"gold","model_answer":"model's","state":"succeeded"}` + "\n" +
		`{"q":"y","answer":"gold2","model_answer":null,"state":"failed"}` + "\n"
	if out != want {
		t.Errorf("got\n%swant\n%s", out, want)
	}
	if err := (MergedFields{Answer: "a", Usage: "a"}).Validate(); err == nil {
		t.Error("two members named a: no error")
	}
	if err := DefaultMergedFields.Validate(); err != nil {
		t.Error(err)
	}
}

// TestExportMergedWithoutRecord covers requests from JSONL request lines:
// no metadata, or metadata that is not an object.
func TestExportMergedWithoutRecord(t *testing.T) {
	none := succeededWith(0, "", "A")
	none.Request.Metadata = nil
	arr := succeededWith(1, `["x", 1.50]`, "B")
	pretty := succeededWith(2, "{\n  \"k\": [1,\n 2]\n}\n", "C")
	out, err := exportMerged(t, &MergedFields{Answer: "answer"}, []jobs.Record{none, arr, pretty})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"custom_id":"rec-a","answer":"A"}` + "\n" +
		`{"custom_id":"rec-b","metadata":["x", 1.50],"answer":"B"}` + "\n" +
		`{"k":[1,2],"answer":"C"}` + "\n"
	if out != want {
		t.Errorf("got\n%swant\n%s", out, want)
	}
}
