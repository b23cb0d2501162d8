package worker

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store"
)

// testModel is the model of every test request; the fake answers it
// without reasoning_content.
const testModel = "deepseek/deepseek-v3"

// mustOpenStore opens a fresh SQLite store in a temporary directory and
// closes it when the test ends.
func mustOpenStore(tb testing.TB) jobs.Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "llmbatch.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("store.Open(%q): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("store Close: %v", err)
		}
	})
	return st
}

// sliceSource is a jobs.RequestSource over a slice (test support: the input
// package turns files into one of these).
type sliceSource struct {
	reqs []jobs.Request
	i    int
}

func (s *sliceSource) Next() (jobs.Request, error) {
	if s.i >= len(s.reqs) {
		return jobs.Request{}, io.EOF
	}
	s.i++
	return s.reqs[s.i-1], nil
}

func (s *sliceSource) Reject(line int, reason string) {
	panic(fmt.Sprintf("test input rejected: line %d: %s", line, reason))
}

func (s *sliceSource) Err() error { return nil }

// promptKey is the content of request n's user message, which the fake
// reports as Call.CustomKey and in Stats.ServedByKey.
func promptKey(n int) string { return fmt.Sprintf("prompt-%d", n) }

// chatBody is a chat completion body whose last user message is content.
func chatBody(model, content string) []byte {
	return []byte(fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}]}`, model, content))
}

// chatRequests returns n chat requests, line i asking promptKey(i).
func chatRequests(n int) []jobs.Request {
	reqs := make([]jobs.Request, n)
	for i := range reqs {
		line := i + 1
		reqs[i] = jobs.Request{
			Line:     line,
			CustomID: fmt.Sprintf("req-%d", line),
			Endpoint: jobs.EndpointChat,
			Model:    testModel,
			Body:     chatBody(testModel, promptKey(line)),
		}
	}
	return reqs
}

// mustImport stores n chat requests as a new job and returns its id.
func mustImport(tb testing.TB, st jobs.Store, n int) int64 {
	tb.Helper()
	job, err := st.Import(context.Background(), jobs.Job{Name: "test", Source: "test.jsonl", Fingerprint: "fp"},
		&sliceSource{reqs: chatRequests(n)})
	if err != nil {
		tb.Fatalf("Import: %v", err)
	}
	if job.Total != n {
		tb.Fatalf("Import stored %d requests, want %d", job.Total, n)
	}
	return job.ID
}

// records reads every request of the job with its result or failure.
func records(tb testing.TB, st jobs.Store, jobID int64) []jobs.Record {
	tb.Helper()
	var recs []jobs.Record
	err := st.Records(context.Background(), jobID, func(r jobs.Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		tb.Fatalf("Records: %v", err)
	}
	return recs
}

// countStatus counts the records by request status.
func countStatus(recs []jobs.Record) map[jobs.Status]int {
	n := map[jobs.Status]int{}
	for _, r := range recs {
		n[r.Request.Status]++
	}
	return n
}

// waitFor polls cond every few milliseconds until it holds, failing the
// test after timeout.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
