package clitest

// A job built through the store at a fixed clock, for the golden files of
// status and the report, and the pieces to build others like it.

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/testclock"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/sqlite"
)

// GoldenT0 is when GoldenJob's job was imported; its clock ends three
// minutes later.
var GoldenT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// RequestList is a RequestSource over requests built in the test.
type RequestList struct{ Reqs []jobs.Request }

// Next hands out the next request.
func (l *RequestList) Next() (jobs.Request, error) {
	if len(l.Reqs) == 0 {
		return jobs.Request{}, io.EOF
	}
	r := l.Reqs[0]
	l.Reqs = l.Reqs[1:]
	return r, nil
}
func (l *RequestList) Reject(int, string) {}
func (l *RequestList) Err() error         { return nil }

// GoldenJob builds, through the store and a clock the test sets, a job of
// ten requests over two models: six succeeded (one after a 429, one
// streamed), two failed (one after a 429), one pending after a 503 and one
// never tried, by a run that was then interrupted. Every time, latency and
// token count is fixed.
func GoldenJob(t *testing.T) (db string, st *sqlite.Store, clock *testclock.Clock) {
	t.Helper()
	db = filepath.Join(t.TempDir(), "llmbatch.db")
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock = testclock.New(GoldenT0)
	st.Now = clock.Now
	var reqs []jobs.Request
	for i := 1; i <= 10; i++ {
		model := "deepseek/deepseek-v3"
		if i%2 == 1 {
			model = "deepseek/deepseek-r1"
		}
		reqs = append(reqs, jobs.Request{Line: i, CustomID: fmt.Sprintf("q%d", i), Endpoint: jobs.EndpointChat, Model: model,
			Body: []byte(fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"question %d"}]}`, model, i))})
	}
	job, err := st.Import(context.Background(), jobs.Job{Name: "golden", Source: "golden.jsonl", Fingerprint: "fp"}, &RequestList{Reqs: reqs})
	if err != nil {
		t.Fatal(err)
	}
	at := func(s float64) time.Time { return GoldenT0.Add(time.Duration(s * float64(time.Second))) }
	// First pass: every request is claimed at t0+10s.
	clock.Set(at(10))
	claimed := Claim(t, st, job.ID, 10)
	Record(t, st,
		Success(claimed[0], at(10), 1200*time.Millisecond, 0, Usage(20, 200, 150, 0)),
		Success(claimed[1], at(11), 800*time.Millisecond, 0, Usage(15, 30, 0, 5)),
		Success(claimed[2], at(12), 2500*time.Millisecond, 0, Usage(25, 400, 320, 10)),
		Success(claimed[3], at(70), 600*time.Millisecond, 0, Usage(12, 20, 0, 0)),
		Failure(claimed[4], at(100), 300*time.Millisecond, 429, jobs.ClassRateLimited, "Rate limit reached, retry after 1s", jobs.StatusPending),
		Failure(claimed[5], at(101), 250*time.Millisecond, 429, jobs.ClassRateLimited, "Rate limit reached, retry after 1s", jobs.StatusPending),
		Failure(claimed[6], at(130), 100*time.Millisecond, 400, jobs.ClassInvalidRequest, "max_tokens must be at most 8192", jobs.StatusFailed),
		Success(claimed[7], at(140), 4*time.Second, 900*time.Millisecond, Usage(30, 600, 500, 0)),
		Failure(claimed[8], at(150), 2*time.Second, 503, jobs.ClassServer, "upstream overloaded", jobs.StatusPending),
		jobs.Outcome{Request: claimed[9], Next: jobs.StatusPending}, // interrupted: no attempt
	)
	// Second pass at t0+2m30s: the two 429s are tried again, the 503 and the
	// interrupted one wait.
	clock.Set(at(150))
	again := Claim(t, st, job.ID, 4)
	byID := map[string]jobs.Request{}
	for _, r := range again {
		byID[r.CustomID] = r
	}
	Record(t, st,
		Success(byID["q5"], at(160), 1500*time.Millisecond, 0, Usage(18, 120, 90, 0)),
		Failure(byID["q6"], at(165), 200*time.Millisecond, 400, jobs.ClassInvalidRequest, "temperature must be at most 2", jobs.StatusFailed),
	)
	for _, id := range []string{"q9", "q10"} {
		if r, ok := byID[id]; ok {
			Record(t, st, jobs.Outcome{Request: r, Next: jobs.StatusPending})
		}
	}
	if err := st.EndRun(context.Background(), job.ID, jobs.EndInterrupted, "interrupted by a signal; 2 requests left", at(170)); err != nil {
		t.Fatal(err)
	}
	clock.Set(at(180))
	return db, st, clock
}

// Claim claims n requests of the job at the store's clock.
func Claim(t *testing.T, st *sqlite.Store, jobID int64, n int) []jobs.Request {
	t.Helper()
	reqs, err := st.Claim(context.Background(), jobID, n, st.Now())
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}

// Record records the outcomes.
func Record(t *testing.T, st *sqlite.Store, outcomes ...jobs.Outcome) {
	t.Helper()
	if err := st.Record(context.Background(), outcomes); err != nil {
		t.Fatal(err)
	}
}

// Usage is a known usage of so many tokens.
func Usage(prompt, completion, reasoning, cached int64) jobs.Usage {
	return jobs.Usage{Known: true, PromptTokens: prompt, CompletionTokens: completion, ReasoningTokens: reasoning,
		CachedTokens: cached, TotalTokens: prompt + completion}
}

// Success is r answered at start after latency (ttft 0: not streamed).
func Success(r jobs.Request, start time.Time, latency, ttft time.Duration, u jobs.Usage) jobs.Outcome {
	return jobs.Outcome{Request: r, Next: jobs.StatusSucceeded, CountAttempt: true,
		Attempt: &jobs.Attempt{Number: r.Attempts + 1, StartedAt: start, Duration: latency, StatusCode: 200},
		Result: &jobs.Result{StatusCode: 200, Raw: []byte(`{"id":"x"}`), Model: r.Model, Usage: u, Latency: latency,
			TTFT: ttft, CreatedAt: start.Add(latency)}}
}

// Failure is r's attempt at start failed with code and class, to next.
func Failure(r jobs.Request, start time.Time, d time.Duration, code int, class jobs.ErrorClass, msg string, next jobs.Status) jobs.Outcome {
	return jobs.Outcome{Request: r, Next: next, CountAttempt: true, NotBefore: start.Add(d + time.Second),
		Attempt: &jobs.Attempt{Number: r.Attempts + 1, StartedAt: start, Duration: d, StatusCode: code, Class: class, Message: msg},
		Failure: &jobs.Failure{Class: class, StatusCode: code, Message: msg}}
}
