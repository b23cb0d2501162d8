package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// readRecords collects every record of the job.
func readRecords(tb testing.TB, s *Store, jobID int64) []jobs.Record {
	tb.Helper()
	var recs []jobs.Record
	if err := s.Records(context.Background(), jobID, func(r jobs.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		tb.Fatalf("Records: %v", err)
	}
	return recs
}

func TestRecords(t *testing.T) {
	s := mustOpenStore(t)
	in := chatRequests(4)
	in[0].Metadata = json.RawMessage(`{"split":"test"}`)
	job := mustImport(t, s, "records", in)
	reqs := mustClaim(t, s, job.ID, 3)

	result := &jobs.Result{StatusCode: 200, ResponseID: "chatcmpl-1", ProviderRequestID: "req-abc",
		Model: "deepseek/deepseek-r1", Raw: json.RawMessage(`{"id":"chatcmpl-1", "t": 1e-5}`), Content: "Paris",
		ReasoningContent: "The capital…", FinishReason: "stop",
		Usage: jobs.Usage{Known: true, PromptTokens: 11, CompletionTokens: 22, ReasoningTokens: 3,
			CachedTokens: 4, TotalTokens: 33},
		Latency: 1234 * time.Millisecond, TTFT: 210 * time.Millisecond, CreatedAt: t0.Add(2 * time.Second)}
	ok := succeed(reqs[0])
	ok.Result = result
	failure := &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 422, Message: "messages: required",
		Body: []byte(`{"error":{"code":422}}`), RequestID: "req-422"}
	bad := failPermanently(reqs[1])
	bad.Failure = failure
	mustRecord(t, s, ok, bad, rateLimited(reqs[2], "slow down"))

	wantResult := *result
	wantResult.RequestID = reqs[0].ID
	tests := []struct {
		name     string
		status   jobs.Status
		attempts int
		metadata string
		result   *jobs.Result
		failure  *jobs.Failure
	}{
		{"Succeeded", jobs.StatusSucceeded, 1, `{"split":"test"}`, &wantResult, nil},
		{"Failed", jobs.StatusFailed, 1, "", nil, failure},
		{"PendingAfterError", jobs.StatusPending, 1, "",
			nil, &jobs.Failure{Class: jobs.ClassRateLimited, StatusCode: 429, Message: "slow down"}},
		{"PendingUntouched", jobs.StatusPending, 0, "", nil, nil},
	}
	recs := readRecords(t, s, job.ID)
	if len(recs) != len(tests) {
		t.Fatalf("Records gave %d records, want %d", len(recs), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := recs[i]
			q := r.Request
			if q.Line != i+1 || q.CustomID != in[i].CustomID || q.JobID != job.ID || q.Endpoint != jobs.EndpointChat ||
				q.Model != in[i].Model || q.Status != tt.status || q.Attempts != tt.attempts || string(q.Metadata) != tt.metadata {
				t.Errorf("Request = %+v, want line %d %q, %s, %d attempts, metadata %q",
					q, i+1, in[i].CustomID, tt.status, tt.attempts, tt.metadata)
			}
			if r.Result != nil && tt.result != nil {
				if !r.Result.CreatedAt.Equal(tt.result.CreatedAt) {
					t.Errorf("Result.CreatedAt = %v, want %v", r.Result.CreatedAt, tt.result.CreatedAt)
				}
				got := *r.Result
				got.CreatedAt = tt.result.CreatedAt
				r.Result = &got
			}
			if !reflect.DeepEqual(r.Result, tt.result) {
				t.Errorf("Result = %+v,\nwant %+v", r.Result, tt.result)
			}
			if !reflect.DeepEqual(r.Failure, tt.failure) {
				t.Errorf("Failure = %+v, want %+v", r.Failure, tt.failure)
			}
		})
	}
}

// TestRecordErrorRequestID: the provider's request id of a failure is
// kept with its other error columns, replaced by the next failure's (NULL
// without an HTTP answer) and cleared by a success, whichever way Record
// applies it.
func TestRecordErrorRequestID(t *testing.T) {
	s := mustOpenStore(t)
	job := mustImport(t, s, "reqid", chatRequests(3))
	withID := func(o jobs.Outcome, id string) jobs.Outcome {
		o.Failure.RequestID = id
		return o
	}
	network := func(r jobs.Request) jobs.Outcome {
		return jobs.Outcome{Request: r, Next: jobs.StatusPending, CountAttempt: true,
			Attempt: &jobs.Attempt{Number: r.Attempts + 1, StartedAt: t0, Class: jobs.ClassNetwork},
			Failure: &jobs.Failure{Class: jobs.ClassNetwork, Message: "connection refused"}}
	}
	unplain := func(r jobs.Request) jobs.Outcome { // a success Record applies on its own
		o := succeed(r)
		o.CountAttempt = false
		return o
	}
	reqs := mustClaim(t, s, job.ID, 3)
	mustRecord(t, s, withID(rateLimited(reqs[0], "slow"), "req-a"), withID(rateLimited(reqs[1], "slow"), "req-b"),
		withID(rateLimited(reqs[2], "slow"), "req-c"))
	column := func(id int64) any {
		var v sql.NullString
		mustQueryRow(t, s, fmt.Sprintf(`SELECT error_request_id FROM requests WHERE id = %d`, id), &v)
		if !v.Valid {
			return nil
		}
		return v.String
	}
	for i, want := range []string{"req-a", "req-b", "req-c"} {
		if got := readRecords(t, s, job.ID)[i].Failure; got == nil || got.RequestID != want {
			t.Errorf("line %d: Failure = %+v, want request id %q", i+1, got, want)
		}
	}
	again := mustClaim(t, s, job.ID, 3)
	mustRecord(t, s, network(again[0]), succeed(again[1]), unplain(again[2]))
	recs := readRecords(t, s, job.ID)
	if f := recs[0].Failure; f == nil || f.RequestID != "" || f.Class != jobs.ClassNetwork {
		t.Errorf("after a network error: Failure = %+v, want no request id", f)
	}
	for i, r := range recs {
		if got := column(r.Request.ID); got != nil {
			t.Errorf("line %d (%s): error_request_id = %v, want NULL", i+1, r.Request.Status, got)
		}
	}
}

func TestRecordsStopsOnCallbackError(t *testing.T) {
	s := mustOpenStore(t)
	job := mustImport(t, s, "stop", chatRequests(5))
	stop := errors.New("disk full")
	calls := 0
	err := s.Records(context.Background(), job.ID, func(jobs.Record) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("Records() = %v after %d calls, want %v after 2", err, calls, stop)
	}
}

// TestRecordsWhileRecording reads records while a writer keeps recording
// results: every read succeeds, and no record is half-written.
func TestRecordsWhileRecording(t *testing.T) {
	const total = 600
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "concurrent", chatRequests(total))
	var done atomic.Bool
	var wg sync.WaitGroup
	defer wg.Wait() // also when a check below stops the test early
	wg.Go(func() {
		defer done.Store(true)
		for {
			reqs, err := s.Claim(ctx, job.ID, 16, t0)
			if err != nil || len(reqs) == 0 {
				if err != nil {
					t.Errorf("Claim: %v", err)
				}
				return
			}
			batch := make([]jobs.Outcome, len(reqs))
			for i, r := range reqs {
				batch[i] = succeed(r)
			}
			if err := s.Record(ctx, batch); err != nil {
				t.Errorf("Record: %v", err)
				return
			}
		}
	})
	reads, last := 0, 0
	for !done.Load() || reads == 0 {
		n, seen := 0, 0
		err := s.Records(ctx, job.ID, func(r jobs.Record) error {
			seen++
			succeeded := r.Request.Status == jobs.StatusSucceeded
			if succeeded != (r.Result != nil) {
				t.Errorf("torn record: line %d is %s with result %v", r.Request.Line, r.Request.Status, r.Result != nil)
			}
			if succeeded {
				n++
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Records while recording: %v", err)
		}
		if seen != total || n < last {
			t.Fatalf("read %d records with %d succeeded after %d before; want %d, never fewer", seen, n, last, total)
		}
		reads, last = reads+1, n
	}
	wg.Wait()
	recs := readRecords(t, s, job.ID)
	for _, r := range recs {
		if r.Request.Status != jobs.StatusSucceeded || r.Result == nil {
			t.Fatalf("line %d = %s, result %v; want every request succeeded", r.Request.Line, r.Request.Status, r.Result)
		}
	}
	t.Logf("%d reads while recording", reads)
}
