package storetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// testRecordsInInputOrder: Records gives every request in input order
// with its result, or its last error, as recorded.
func testRecordsInInputOrder(t *testing.T, st jobs.Store) {
	in := chats(4)
	in[0].Metadata = json.RawMessage(`{"split":"test"}`)
	in[1].Body = []byte(`{"model": "m",  "messages":[{"role":"user","content":"caf\u00e9 1.50e0"}]}`)
	job := mustImport(t, st, "records", in)
	reqs := mustClaim(t, st, job.ID, 3)
	result := &jobs.Result{RequestID: reqs[0].ID, StatusCode: 200, ResponseID: "chatcmpl-1", ProviderRequestID: "req-abc",
		Model: "deepseek/deepseek-r1", Raw: json.RawMessage(`{"id":"chatcmpl-1", "t": 1e-5}`), Content: "Paris",
		ReasoningContent: "The capital…", FinishReason: "stop",
		Usage: jobs.Usage{Known: true, PromptTokens: 11, CompletionTokens: 22, ReasoningTokens: 3, CachedTokens: 4,
			TotalTokens: 33},
		Latency: 1234 * time.Millisecond, TTFT: 210 * time.Millisecond, CreatedAt: t0.Add(2 * time.Second)}
	ok := succeed(reqs[0])
	ok.Result = result
	failure := &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 422, Message: "messages: required",
		Body: []byte(`{"error":{"code":422}}`), RequestID: "req-422"}
	bad := failPermanently(reqs[1], failure.Message)
	bad.Failure = failure
	mustRecord(t, st, rateLimited(reqs[2], "slow down", time.Time{}), bad, ok) // not in input order
	tests := []struct {
		status   jobs.Status
		attempts int
		metadata string
		result   *jobs.Result
		failure  *jobs.Failure
	}{
		{jobs.StatusSucceeded, 1, `{"split":"test"}`, result, nil},
		{jobs.StatusFailed, 1, "", nil, failure},
		{jobs.StatusPending, 1, "", nil, &jobs.Failure{Class: jobs.ClassRateLimited, StatusCode: 429, Message: "slow down"}},
		{jobs.StatusPending, 0, "", nil, nil},
	}
	recs := mustRecords(t, st, job.ID)
	if len(recs) != len(tests) {
		t.Fatalf("Records gave %d records, want %d", len(recs), len(tests))
	}
	for i, tt := range tests {
		r, q := recs[i], recs[i].Request
		if q.ID == 0 || q.Line != i+1 || q.CustomID != in[i].CustomID || q.JobID != job.ID || q.Endpoint != in[i].Endpoint ||
			q.Model != in[i].Model || q.Status != tt.status || q.Attempts != tt.attempts || string(q.Metadata) != tt.metadata {
			t.Errorf("record %d: Request = %+v, want line %d %q, %s with %d attempts, metadata %q",
				i, q, i+1, in[i].CustomID, tt.status, tt.attempts, tt.metadata)
		}
		if q.Body != nil {
			t.Errorf("record %d: Records read the body %q; only RecordsWith Bodies reads it", i, q.Body)
		}
		if !sameResult(r.Result, tt.result) {
			t.Errorf("record %d: Result = %+v,\nwant %+v", i, r.Result, tt.result)
		}
		if !reflect.DeepEqual(r.Failure, tt.failure) {
			t.Errorf("record %d: Failure = %+v, want %+v", i, r.Failure, tt.failure)
		}
	}
	testRecordsWithBodies(t, st, job.ID, in)
}

// testRecordsWithBodies: RecordsWith Bodies gives what Records gives, with
// each request's body as stored, byte for byte.
func testRecordsWithBodies(t *testing.T, st jobs.Store, jobID int64, in []jobs.Request) {
	t.Helper()
	plain := mustRecords(t, st, jobID)
	var got []jobs.Record
	err := st.RecordsWith(t.Context(), jobID, jobs.RecordOptions{Bodies: true}, func(r jobs.Record) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatalf("RecordsWith: %v", err)
	}
	if len(got) != len(plain) {
		t.Fatalf("RecordsWith gave %d records, Records %d", len(got), len(plain))
	}
	for i, r := range got {
		if string(r.Request.Body) != string(in[i].Body) {
			t.Errorf("record %d: Body = %q, want %q", i, r.Request.Body, in[i].Body)
		}
		r.Request.Body = nil
		if !reflect.DeepEqual(r.Request, plain[i].Request) || !sameResult(r.Result, plain[i].Result) ||
			!reflect.DeepEqual(r.Failure, plain[i].Failure) {
			t.Errorf("record %d: RecordsWith gave %+v, Records %+v", i, r, plain[i])
		}
	}
}

// sameResult compares results, CreatedAt with Equal.
func sameResult(a, b *jobs.Result) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.CreatedAt, y.CreatedAt = time.Time{}, time.Time{}
	return a.CreatedAt.Equal(b.CreatedAt) && reflect.DeepEqual(x, y)
}

func testRecordsStops(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "stop", chats(5))
	stop := errors.New("disk full")
	calls := 0
	err := st.Records(t.Context(), job.ID, func(jobs.Record) error {
		if calls++; calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("Records() = %v after %d calls, want %v after 2", err, calls, stop)
	}
}
