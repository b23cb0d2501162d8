package storetest

import (
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// t0 is when the suite claims: requests never tried are due at any time,
// and the times it records are whole milliseconds after it, which every
// engine keeps exactly.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// sourceFile is the file every source says it reads, for the messages of
// the lines it rejects.
const sourceFile = "in.jsonl"

// source is a jobs.RequestSource over a slice, as input.Reader is over a
// file: it collects the lines the store rejects and reports them, with
// the lines it found invalid itself, from Err.
type source struct {
	reqs []jobs.Request
	next int
	// failAt, when > 0, makes Next return readErr instead of the
	// failAt-th request.
	failAt  int
	readErr error
	// invalid are the lines the reader itself found invalid; rejected
	// those the store reported.
	invalid, rejected []jobs.LineError
	// keep hands invalid lines out (import --skip-invalid).
	keep bool
}

// KeepsInvalid is how input.Reader tells the store that it hands out
// invalid lines, which the store then keeps as failed requests.
func (s *source) KeepsInvalid() bool { return s.keep }

func (s *source) Next() (jobs.Request, error) {
	if s.failAt > 0 && s.next == s.failAt-1 {
		return jobs.Request{}, s.readErr
	}
	if s.next >= len(s.reqs) {
		return jobs.Request{}, io.EOF
	}
	s.next++
	return s.reqs[s.next-1], nil
}

func (s *source) Reject(line int, reason string) {
	s.rejected = append(s.rejected, jobs.LineError{File: sourceFile, Line: line, Reason: reason})
}

func (s *source) Err() error {
	if len(s.invalid)+len(s.rejected) == 0 {
		return nil
	}
	v := &jobs.ValidationError{}
	for _, e := range append(slices.Clone(s.invalid), s.rejected...) {
		v.Add(e)
	}
	return v
}

// fingerprinted is a source that identifies its content.
type fingerprinted struct {
	*source
	fingerprint string
}

func (f fingerprinted) Fingerprint() string { return f.fingerprint }

// chat is line n of a chat input, with custom_id "req-n".
func chat(n int) jobs.Request {
	return jobs.Request{Line: n, CustomID: fmt.Sprintf("req-%d", n), Endpoint: jobs.EndpointChat, Model: "m-v3",
		Body: fmt.Appendf(nil, `{"model":"m-v3","messages":[{"role":"user","content":"prompt %d"}]}`, n)}
}

// chats is lines 1 to n of a chat input.
func chats(n int) []jobs.Request {
	reqs := make([]jobs.Request, n)
	for i := range reqs {
		reqs[i] = chat(i + 1)
	}
	return reqs
}

// keyed is chat line n with the cache key "key-<key>", or none for "".
func keyed(n int, key string) jobs.Request {
	r := chat(n)
	if key != "" {
		r.CacheKey = "key-" + key
	}
	return r
}

// invalidLine is line n as a reader with --skip-invalid hands it out.
func invalidLine(n int, customID, reason string) jobs.Request {
	return jobs.Request{Line: n, CustomID: customID, Endpoint: jobs.EndpointChat, Status: jobs.StatusFailed,
		Body: fmt.Appendf(nil, "{bad line %d", n), Invalid: jobs.LineError{File: sourceFile, Line: n, Reason: reason}.Error()}
}

// succeed is a plain success of r: one attempt of a second, and a result
// without usage.
func succeed(r jobs.Request) jobs.Outcome {
	return jobs.Outcome{Request: r, Next: jobs.StatusSucceeded, CountAttempt: true,
		Attempt: &jobs.Attempt{RequestID: r.ID, Number: r.Attempts + 1, StartedAt: t0, Duration: time.Second, StatusCode: 200},
		Result: &jobs.Result{RequestID: r.ID, StatusCode: 200, Raw: []byte(`{"id":"x"}`), Content: "ok",
			Latency: time.Second, CreatedAt: t0}}
}

// answer is a success of r with its own text, usage and latency.
func answer(r jobs.Request, text string, latency time.Duration) jobs.Outcome {
	o := succeed(r)
	o.Attempt.Duration = latency
	o.Result = &jobs.Result{RequestID: r.ID, StatusCode: 200, ResponseID: "resp-" + text, ProviderRequestID: "prov-" + text,
		Model: r.Model, Raw: []byte(`{"id":"resp-` + text + `","choices":[]}`), Content: text,
		ReasoningContent: "thought " + text, FinishReason: "stop",
		Usage:   jobs.Usage{Known: true, PromptTokens: 10, CompletionTokens: 5, ReasoningTokens: 2, TotalTokens: 15},
		Latency: latency, TTFT: 90 * time.Millisecond, CreatedAt: t0}
	return o
}

// failPermanently is a 400 for r, with msg as its message.
func failPermanently(r jobs.Request, msg string) jobs.Outcome {
	return jobs.Outcome{Request: r, Next: jobs.StatusFailed, CountAttempt: true,
		Attempt: &jobs.Attempt{RequestID: r.ID, Number: r.Attempts + 1, StartedAt: t0, StatusCode: 400,
			Class: jobs.ClassInvalidRequest, Message: msg},
		Failure: &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: msg}}
}

// rateLimited is a 429 for r, to be sent again from notBefore on.
func rateLimited(r jobs.Request, msg string, notBefore time.Time) jobs.Outcome {
	return jobs.Outcome{Request: r, Next: jobs.StatusPending, CountAttempt: true, NotBefore: notBefore,
		Attempt: &jobs.Attempt{RequestID: r.ID, Number: r.Attempts + 1, StartedAt: t0, StatusCode: 429,
			Class: jobs.ClassRateLimited, Message: msg},
		Failure: &jobs.Failure{Class: jobs.ClassRateLimited, StatusCode: 429, Message: msg}}
}

// handBack is r given back unsent, as an interrupted run does.
func handBack(r jobs.Request) jobs.Outcome {
	return jobs.Outcome{Request: r, Next: jobs.StatusPending}
}

// timed returns o with its attempt started at start and lasting d.
func timed(o jobs.Outcome, start time.Time, d time.Duration) jobs.Outcome {
	a := *o.Attempt
	a.StartedAt, a.Duration = start, d
	o.Attempt = &a
	return o
}

func mustImport(t *testing.T, st jobs.Store, name string, reqs []jobs.Request) jobs.Job {
	t.Helper()
	job, err := st.Import(t.Context(), jobs.Job{Name: name, Source: name + ".jsonl", Fingerprint: "fp-" + name},
		&source{reqs: reqs})
	if err != nil {
		t.Fatalf("Import(%q): %v", name, err)
	}
	return job
}

// mustClaim claims up to n requests of the job at t0.
func mustClaim(t *testing.T, st jobs.Store, jobID int64, n int) []jobs.Request {
	t.Helper()
	return mustClaimAt(t, st, jobID, n, t0)
}

func mustClaimAt(t *testing.T, st jobs.Store, jobID int64, n int, now time.Time) []jobs.Request {
	t.Helper()
	reqs, err := st.Claim(t.Context(), jobID, n, now)
	if err != nil {
		t.Fatalf("Claim(%d): %v", n, err)
	}
	return reqs
}

func mustRecord(t *testing.T, st jobs.Store, outcomes ...jobs.Outcome) {
	t.Helper()
	if err := st.Record(t.Context(), outcomes); err != nil {
		t.Fatalf("Record: %v", err)
	}
}

func mustJob(t *testing.T, st jobs.Store, name string) jobs.Job {
	t.Helper()
	job, err := st.Job(t.Context(), name)
	if err != nil {
		t.Fatalf("Job(%q): %v", name, err)
	}
	return job
}

// mustRecords reads every record of the job.
func mustRecords(t *testing.T, st jobs.Store, jobID int64) []jobs.Record {
	t.Helper()
	var recs []jobs.Record
	if err := st.Records(t.Context(), jobID, func(r jobs.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatalf("Records: %v", err)
	}
	return recs
}

func mustStats(t *testing.T, st jobs.Store, jobID int64) jobs.Stats {
	t.Helper()
	stats, err := st.Stats(t.Context(), jobID)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return stats
}

// statuses lists the statuses of the job's requests in input order.
func statuses(t *testing.T, st jobs.Store, jobID int64) []jobs.Status {
	t.Helper()
	var out []jobs.Status
	for _, r := range mustRecords(t, st, jobID) {
		out = append(out, r.Request.Status)
	}
	return out
}

// attemptCounts lists the attempt counts of the job's requests in input order.
func attemptCounts(t *testing.T, st jobs.Store, jobID int64) []int {
	t.Helper()
	var out []int
	for _, r := range mustRecords(t, st, jobID) {
		out = append(out, r.Request.Attempts)
	}
	return out
}

func linesOf(reqs []jobs.Request) []int {
	var lines []int
	for _, r := range reqs {
		lines = append(lines, r.Line)
	}
	return lines
}

// counts is a job's counts by status, in life-cycle order.
func counts(pending, running, succeeded, failed, cancelled int) map[jobs.Status]int {
	return map[jobs.Status]int{jobs.StatusPending: pending, jobs.StatusRunning: running,
		jobs.StatusSucceeded: succeeded, jobs.StatusFailed: failed, jobs.StatusCancelled: cancelled}
}

// sameCounts compares counts by status; an engine may leave out a status
// none of the job's requests is in.
func sameCounts(got, want map[jobs.Status]int) bool {
	for _, st := range jobs.Statuses {
		if got[st] != want[st] {
			return false
		}
	}
	return true
}
