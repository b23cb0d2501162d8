package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// exactBody spells its numbers and strings the way a decode and re-encode
// would not: the body must come back byte for byte.
const exactBody = `{ "model" : "deepseek/deepseek-r1",  "temperature":1e-5, "top_p":0.10,` +
	` "seed":12345678901234567890, "messages":[{"role":"user","content":"caf\u00e9 \"q\""}] }`

func testImportStoresRequestsExactly(t *testing.T, st jobs.Store) {
	in := []jobs.Request{
		{Line: 1, CustomID: "exact", Endpoint: jobs.EndpointChat, Model: "deepseek/deepseek-r1",
			Body: []byte(exactBody), Metadata: json.RawMessage(`{"n": 1.50, "tags":["a"]}`)},
		{Line: 2, CustomID: "line-2", Endpoint: jobs.EndpointCompletions, Model: "deepseek/deepseek-v3",
			Body: []byte(`{"model":"deepseek/deepseek-v3","prompt":[1,2,3]}`)},
		{Line: 4, CustomID: "after-blank", Endpoint: jobs.EndpointChat, Model: "m",
			Body: []byte(`{"model":"m","messages":[]}`), Metadata: json.RawMessage(`"just a string"`)},
	}
	given := jobs.Job{Name: "exact", Source: "in/exact.jsonl", Fingerprint: "sha256:abc", DefaultModel: "deepseek/deepseek-v3",
		Settings: jobs.Settings{BaseURL: "http://127.0.0.1:9/v1", Shape: map[string][]string{"param": {"top_k=5", "min_p=0.1"}}}}
	job, err := st.Import(t.Context(), given, &source{reqs: in})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if job.ID == 0 || job.Total != 3 || job.State != jobs.JobActive || job.CreatedAt.IsZero() {
		t.Errorf("Import() = %+v; want an ID, Total 3, active, a creation time", job)
	}
	got := mustJob(t, st, "exact")
	if d := got.CreatedAt.Sub(job.CreatedAt).Abs(); d >= time.Millisecond {
		t.Errorf("stored CreatedAt = %v, want %v (to the millisecond)", got.CreatedAt, job.CreatedAt)
	}
	got.CreatedAt = time.Time{}
	want := given
	want.ID, want.State, want.Total = job.ID, jobs.JobActive, 3
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Job() =\n %+v\nwant %+v", got, want)
	}
	checkClaimedExactly(t, mustClaim(t, st, job.ID, 10), in, job.ID)
	var lines []int
	var meta []string
	for _, r := range mustRecords(t, st, job.ID) {
		lines, meta = append(lines, r.Request.Line), append(meta, string(r.Request.Metadata))
	}
	if want := []int{1, 2, 4}; !slices.Equal(lines, want) {
		t.Errorf("Records lines = %v, want %v", lines, want)
	}
	if want := []string{`{"n": 1.50, "tags":["a"]}`, ``, `"just a string"`}; !slices.Equal(meta, want) {
		t.Errorf("Records metadata = %q, want %q", meta, want)
	}
}

// checkClaimedExactly compares claimed requests with those imported.
func checkClaimedExactly(t *testing.T, got, in []jobs.Request, jobID int64) {
	t.Helper()
	if len(got) != len(in) {
		t.Fatalf("claimed %d requests, want %d", len(got), len(in))
	}
	for i, r := range got {
		w := in[i]
		if r.ID == 0 || r.JobID != jobID || r.Line != w.Line || r.CustomID != w.CustomID || r.Endpoint != w.Endpoint ||
			r.Model != w.Model || r.Status != jobs.StatusRunning || r.Attempts != 0 {
			t.Errorf("claimed %d = %+v, want line %d %q %s %q, running, job %d", i, r, w.Line, w.CustomID, w.Endpoint, w.Model, jobID)
		}
		if !bytes.Equal(r.Body, w.Body) {
			t.Errorf("claimed %d body = %s, want %s", i, r.Body, w.Body)
		}
		if !bytes.Equal(r.Metadata, w.Metadata) || (r.Metadata == nil) != (w.Metadata == nil) {
			t.Errorf("claimed %d metadata = %q, want %q", i, r.Metadata, w.Metadata)
		}
	}
}

func testImportStoresFingerprint(t *testing.T, st jobs.Store) {
	src := fingerprinted{&source{reqs: chats(2)}, "sha256:content"}
	job, err := st.Import(t.Context(), jobs.Job{Name: "fp", Source: "fp.jsonl"}, src)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if got, want := job.Fingerprint, "sha256:content"; got != want {
		t.Errorf("Import().Fingerprint = %q, want %q (the source's)", got, want)
	}
	if got, want := mustJob(t, st, "fp").Fingerprint, "sha256:content"; got != want {
		t.Errorf("stored Fingerprint = %q, want %q", got, want)
	}
}

// withIDs returns chats(n) with each line of dups using the custom_id of
// the earlier line it names.
func withIDs(n int, dups map[int]int) []jobs.Request {
	reqs := chats(n)
	for line, first := range dups {
		reqs[line-1].CustomID = reqs[first-1].CustomID
	}
	return reqs
}

func testImportDuplicateCustomID(t *testing.T, st jobs.Store) {
	tests := []struct {
		name string
		n    int
		dups map[int]int // line → the earlier line whose custom_id it uses again
	}{
		{"Near", 5, map[int]int{5: 2}},
		{"Far", 350, map[int]int{230: 7}},
		{"Several", 350, map[int]int{10: 9, 101: 100, 250: 7, 349: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &source{reqs: withIDs(tt.n, tt.dups)}
			name := "dups-" + tt.name
			_, err := st.Import(t.Context(), jobs.Job{Name: name, Source: sourceFile}, src)
			var ve *jobs.ValidationError
			if !errors.As(err, &ve) || ve.Total != len(tt.dups) {
				t.Fatalf("Import() error = %v, want a *jobs.ValidationError of %d lines", err, len(tt.dups))
			}
			var want []jobs.LineError
			for _, line := range slices.Sorted(maps.Keys(tt.dups)) {
				first := tt.dups[line]
				want = append(want, jobs.LineError{File: sourceFile, Line: line,
					Reason: fmt.Sprintf("duplicate custom_id %q (first used on line %d)", fmt.Sprintf("req-%d", first), first)})
			}
			if got := src.rejected; !slices.Equal(got, want) {
				t.Errorf("Reject calls = %+v, want %+v", got, want)
			}
			checkNothingImported(t, st, name)
		})
	}
}

// checkNothingImported checks that a refused import of name left nothing,
// and nothing that stops a corrected import under the same name.
func checkNothingImported(t *testing.T, st jobs.Store, name string) {
	t.Helper()
	if _, err := st.Job(t.Context(), name); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Job(%q) after a refused import: error = %v, want ErrNotFound", name, err)
	}
	list, err := st.Jobs(t.Context())
	if err != nil {
		t.Fatalf("Jobs: %v", err)
	}
	for _, j := range list {
		if j.Name == name {
			t.Errorf("Jobs() after a refused import lists %+v", j)
		}
	}
	job := mustImport(t, st, name, chats(2))
	if got := len(mustRecords(t, st, job.ID)); job.Total != 2 || got != 2 {
		t.Errorf("corrected import: Total %d, %d records; want 2, 2", job.Total, got)
	}
}

func testImportReadError(t *testing.T, st jobs.Store) {
	readErr := errors.New("read in.jsonl: input/output error")
	src := &source{reqs: chats(300), failAt: 203, readErr: readErr}
	if _, err := st.Import(t.Context(), jobs.Job{Name: "io", Source: sourceFile}, src); !errors.Is(err, readErr) {
		t.Fatalf("Import() error = %v, want %v", err, readErr)
	}
	checkNothingImported(t, st, "io")
}

func testImportInvalidLine(t *testing.T, st jobs.Store) {
	bad := jobs.LineError{File: sourceFile, Line: 2, Reason: "invalid JSON"}
	src := &source{reqs: []jobs.Request{chat(1), chat(3)}, invalid: []jobs.LineError{bad}}
	_, err := st.Import(t.Context(), jobs.Job{Name: "invalid", Source: sourceFile}, src)
	var ve *jobs.ValidationError
	if !errors.As(err, &ve) || ve.Total != 1 || ve.Errors[0] != bad {
		t.Fatalf("Import() error = %v, want the source's validation error of line 2", err)
	}
	checkNothingImported(t, st, "invalid")
}

func testImportSameName(t *testing.T, st jobs.Store) {
	first := mustImport(t, st, "twice", chats(2))
	_, err := st.Import(t.Context(), jobs.Job{Name: "twice", Source: "other.jsonl", Fingerprint: "fp-other"},
		&source{reqs: chats(5)})
	if !errors.Is(err, jobs.ErrJobChanged) {
		t.Fatalf("second Import() error = %v, want ErrJobChanged", err)
	}
	got := mustJob(t, st, "twice")
	if got.ID != first.ID || got.Total != 2 || got.Fingerprint != "fp-twice" || got.Source != "twice.jsonl" {
		t.Errorf("Job() = %+v; want the first import unchanged", got)
	}
	if list, err := st.Jobs(t.Context()); err != nil || len(list) != 1 {
		t.Errorf("Jobs() = %d jobs, %v; want 1", len(list), err)
	}
	if n := len(mustRecords(t, st, first.ID)); n != 2 {
		t.Errorf("%d records, want 2", n)
	}
}

// testImportKeepsInvalidLines imports with --skip-invalid: invalid lines and
// a second use of a custom_id are stored failed (invalid_input), never
// claimed nor retried, and never cost a valid line its custom_id.
func testImportKeepsInvalidLines(t *testing.T, st jobs.Store) {
	in := chats(8)
	in[1] = invalidLine(2, "req-5", "invalid JSON") // the custom_id of a valid later line
	in[3] = invalidLine(4, "line-4", "no messages")
	in[6].CustomID = "req-3" // a duplicate
	job, err := st.Import(t.Context(), jobs.Job{Name: "skip", Source: sourceFile}, &source{reqs: in, keep: true})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if job.Total != 8 {
		t.Errorf("Total = %d, want 8 (every line is a request)", job.Total)
	}
	dup := jobs.LineError{File: sourceFile, Line: 7, Reason: `duplicate custom_id "req-3" (first used on line 3)`}.Error()
	want := map[int]string{2: in[1].Invalid, 4: in[3].Invalid, 7: dup}
	checkKeptInvalid(t, mustRecords(t, st, job.ID), want)
	msgs, total, err := st.InvalidLines(t.Context(), job.ID, 2)
	if err != nil || total != 3 || !slices.Equal(msgs, []string{in[1].Invalid, in[3].Invalid}) {
		t.Errorf("InvalidLines(2) = %q, %d, %v; want the first two of 3 in line order", msgs, total, err)
	}
	claimed := mustClaim(t, st, job.ID, 100)
	if got, want := linesOf(claimed), []int{1, 3, 5, 6, 8}; !slices.Equal(got, want) {
		t.Fatalf("claimed lines %v, want the valid ones %v", got, want)
	}
	mustRecord(t, st, failPermanently(claimed[0], "bad"))
	if n, err := st.Retry(t.Context(), job.ID); err != nil || n != 1 {
		t.Errorf("Retry() = %d, %v; want 1 (the API failure, not the invalid lines)", n, err)
	}
	stats := mustStats(t, st, job.ID)
	if !hasClass(stats.Errors, jobs.ClassInvalidInput, 3) {
		t.Errorf("Stats.Errors = %+v, want invalid_input × 3", stats.Errors)
	}
	if got, want := stats.Counts, counts(1, 4, 0, 3, 0); !sameCounts(got, want) {
		t.Errorf("Counts = %v, want %v", got, want)
	}
}

// hasClass reports whether list counts n of class.
func hasClass(list []jobs.ClassCount, class jobs.ErrorClass, n int) bool {
	for _, c := range list {
		if c.Class == class {
			return c.Count == n
		}
	}
	return false
}

// checkKeptInvalid checks that exactly the lines of want are failed with
// class invalid_input and want's message, that the valid lines keep their
// custom_ids, and that no custom_id is used twice.
func checkKeptInvalid(t *testing.T, recs []jobs.Record, want map[int]string) {
	t.Helper()
	ids := map[string]int{}
	for _, r := range recs {
		q := r.Request
		if prev, dup := ids[q.CustomID]; dup {
			t.Errorf("custom_id %q on lines %d and %d", q.CustomID, prev, q.Line)
		}
		ids[q.CustomID] = q.Line
		msg, invalid := want[q.Line]
		switch {
		case invalid && (q.Status != jobs.StatusFailed || r.Failure == nil || r.Failure.Class != jobs.ClassInvalidInput ||
			r.Failure.Message != msg):
			t.Errorf("line %d = %s, failure %+v; want failed, invalid_input, %q", q.Line, q.Status, r.Failure, msg)
		case !invalid && (q.Status != jobs.StatusPending || q.CustomID != fmt.Sprintf("req-%d", q.Line)):
			t.Errorf("line %d = %s %q, want pending with its own custom_id", q.Line, q.Status, q.CustomID)
		}
	}
}
