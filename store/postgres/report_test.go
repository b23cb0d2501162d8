package postgres_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/pgtest"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/postgres"
	"github.com/llmbatch/llmbatch/store/sqlite"
)

// TestSameAsSQLite plays one history of two jobs (imports with lines kept
// invalid, claims and outcomes of every kind over ten minutes, a retry,
// provider batches, a cache pass) on both engines with the same clock, and
// compares everything the reading side gives: statistics, summaries,
// reports, records, models and invalid lines must be equal, not merely
// alike, so that status, report and export say the same of a job on
// either engine.
func TestSameAsSQLite(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	lite, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "llmbatch.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { lite.Close() })
	pg, err := postgres.Open(t.Context(), pgtest.DSN(t))
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { pg.Close() })
	lite.Now = func() time.Time { return now }
	pg.Now = lite.Now
	want, got := readAll(t, lite, history(t, lite, now)), readAll(t, pg, history(t, pg, now))
	for _, name := range sortedKeys(want) {
		if !reflect.DeepEqual(got[name], want[name]) {
			t.Errorf("%s:\npostgres %+v\nsqlite   %+v", name, got[name], want[name])
		}
	}
}

// history plays the history on st and returns the ids of its two jobs.
func history(t *testing.T, st jobs.Store, now time.Time) [2]int64 {
	t.Helper()
	ctx := t.Context()
	a := mustImport(t, st, "a", lines(240, 60, true))
	for round := range 12 {
		at := now.Add(-10*time.Minute + time.Duration(round)*50*time.Second)
		reqs, err := st.Claim(ctx, a.ID, 30, at)
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		var outs []jobs.Outcome
		for _, r := range reqs {
			if o, ok := outcome(r, round, at); ok {
				outs = append(outs, o)
			}
		}
		if err := st.Record(ctx, outs); err != nil {
			t.Fatalf("Record: %v", err)
		}
		if round == 6 {
			if _, err := st.Retry(ctx, a.ID); err != nil {
				t.Fatalf("Retry: %v", err)
			}
		}
	}
	providerBatches(t, st, a.ID, now)
	b := mustImport(t, st, "b", lines(120, 80, false))
	p := st.NewCachePass(b.ID)
	for more := true; more; {
		var err error
		if more, err = p.Next(ctx, 17); err != nil {
			t.Fatalf("CachePass.Next: %v", err)
		}
	}
	return [2]int64{a.ID, b.ID}
}

// models are the models of the lines, in an order no collation but byte
// order keeps.
var models = []string{"deepseek/deepseek-r1", "deepseek-v3", "Qwen/Qwen2.5-72B", "a_model"}

// lines is n lines of input, every third without a cache key and the
// others keyed by line modulo keys; with invalid, a few are kept invalid.
func lines(n, keys int, invalid bool) []jobs.Request {
	reqs := make([]jobs.Request, n)
	for i := range reqs {
		line := i + 1
		r := jobs.Request{Line: line, CustomID: fmt.Sprintf("req-%d", line), Endpoint: jobs.EndpointChat,
			Model: models[line%len(models)], Body: fmt.Appendf(nil, `{"messages":[{"role":"user","content":"p%d"}]}`, line)}
		if line%3 != 0 {
			r.CacheKey = fmt.Sprintf("key-%d", line%keys)
		}
		if line%7 == 0 {
			r.Metadata = fmt.Appendf(nil, `{"n":%d}`, line)
		}
		if invalid && line%41 == 0 {
			r.Status, r.Invalid = jobs.StatusFailed, fmt.Sprintf("in.jsonl:%d: bad line", line)
		}
		reqs[i] = r
	}
	return reqs
}

// outcome is what becomes of r claimed in round at at; false leaves it
// running. The same request in the same round has the same fate on every
// engine, whatever order the claim returned it in.
func outcome(r jobs.Request, round int, at time.Time) (jobs.Outcome, bool) {
	rng := rand.New(rand.NewPCG(uint64(round), uint64(r.Line)))
	start := at.Add(time.Duration(rng.IntN(40_000)) * time.Millisecond)
	took := time.Duration(50+rng.IntN(3000)) * time.Millisecond
	attempt := &jobs.Attempt{RequestID: r.ID, Number: r.Attempts + 1, StartedAt: start, Duration: took}
	o := jobs.Outcome{Request: r, Attempt: attempt, CountAttempt: true}
	fail := func(next jobs.Status, class jobs.ErrorClass, code int, msg string) (jobs.Outcome, bool) {
		o.Next, attempt.Class, attempt.StatusCode, attempt.Message = next, class, code, msg
		o.Failure = &jobs.Failure{Class: class, StatusCode: code, Message: msg, Body: []byte(`{"error":"` + msg + `"}`)}
		o.NotBefore = start.Add(took + 5*time.Second)
		return o, true
	}
	switch k := rng.IntN(100); {
	case k < 55:
		return succeeded(o, rng, 0), true
	case k < 62:
		return fail(jobs.StatusFailed, jobs.ClassInvalidRequest, 400, fmt.Sprintf("bad %d", rng.IntN(4)))
	case k < 75:
		return fail(jobs.StatusPending, jobs.ClassRateLimited, 429, "slow down")
	case k < 83:
		return fail(jobs.StatusPending, jobs.ClassServer, 500, "oops")
	case k < 89:
		attempt.StatusCode = 0
		return fail(jobs.StatusPending, jobs.ClassTimeout, 0, "timed out")
	case k < 92:
		o.CountAttempt = false
		return fail(jobs.StatusPending, jobs.ClassAuth, 401, "bad key")
	case k < 97:
		return jobs.Outcome{Request: r, Next: jobs.StatusPending}, true
	default:
		return o, false
	}
}

// succeeded makes o a success with a result drawn from rng, answered by
// the provider batch batch (0 online).
func succeeded(o jobs.Outcome, rng *rand.Rand, batch int64) jobs.Outcome {
	r, a := o.Request, o.Attempt
	a.StatusCode, a.ProviderBatch = 200, batch
	o.Next = jobs.StatusSucceeded
	res := &jobs.Result{RequestID: r.ID, StatusCode: 200, ResponseID: "resp-" + r.CustomID, Model: r.Model,
		Raw: []byte(`{"id":"resp-` + r.CustomID + `"}`), Content: "answer " + r.CustomID, FinishReason: "stop",
		Latency: a.Duration, CreatedAt: a.StartedAt.Add(a.Duration), ProviderBatch: batch}
	if rng.IntN(2) == 0 {
		res.TTFT = time.Duration(rng.IntN(int(a.Duration/time.Millisecond))) * time.Millisecond
	}
	if rng.IntN(7) != 0 {
		p, c := int64(rng.IntN(500)), int64(rng.IntN(900))
		res.Usage = jobs.Usage{Known: true, PromptTokens: p, CompletionTokens: c, ReasoningTokens: c / 3,
			CachedTokens: p / 4, TotalTokens: p + c}
	}
	o.Result = res
	return o
}

// providerBatches puts pending requests of the job in two provider
// batches: the first answers some and is collected, the second stays open
// with its requests running in it.
func providerBatches(t *testing.T, st jobs.Store, jobID int64, now time.Time) {
	t.Helper()
	ctx := t.Context()
	var pending []int64
	if err := st.PendingRequests(ctx, jobID, func(r jobs.Request) error {
		pending = append(pending, r.ID)
		return nil
	}); err != nil || len(pending) < 15 {
		t.Fatalf("PendingRequests = %d, %v; want at least 15", len(pending), err)
	}
	for i, ids := range [][]int64{pending[:10], pending[10:15]} {
		b, err := st.CreateBatch(ctx, jobs.ProviderBatch{JobID: jobID, Key: fmt.Sprintf("batch-%d", i),
			Endpoint: jobs.EndpointChat, Model: models[0], Requests: len(ids)}, ids)
		if err != nil {
			t.Fatalf("CreateBatch: %v", err)
		}
		if i == 0 {
			answerBatch(t, st, b.ID, now)
		}
	}
}

// answerBatch records answers to six of the batch's requests and collects
// it.
func answerBatch(t *testing.T, st jobs.Store, batchID int64, now time.Time) {
	t.Helper()
	var outs []jobs.Outcome
	err := st.BatchRequests(t.Context(), batchID, false, func(r jobs.Request) error {
		if len(outs) < 6 {
			rng := rand.New(rand.NewPCG(uint64(batchID), uint64(r.Line)))
			a := &jobs.Attempt{RequestID: r.ID, Number: r.Attempts + 1, StartedAt: now.Add(-time.Minute),
				Duration: time.Duration(1+rng.IntN(50)) * time.Second}
			outs = append(outs, succeeded(jobs.Outcome{Request: r, Attempt: a, CountAttempt: true}, rng, batchID))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("BatchRequests: %v", err)
	}
	if err := st.Record(t.Context(), outs); err != nil {
		t.Fatalf("Record(batch): %v", err)
	}
	if _, err := st.CollectBatch(t.Context(), batchID); err != nil {
		t.Fatalf("CollectBatch: %v", err)
	}
}

// readAll reads, by name, everything the reading side gives of the jobs.
func readAll(t *testing.T, st jobs.Store, ids [2]int64) map[string]any {
	t.Helper()
	ctx := t.Context()
	out := map[string]any{}
	put := func(name string, v any, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = v
	}
	for i, id := range ids {
		job := fmt.Sprintf("job %d: ", i)
		st1, err := st.Stats(ctx, id)
		put(job+"Stats", st1, err)
		rep, err := st.Report(ctx, id, jobs.ReportOptions{Buckets: 25, Bins: 9, Slowest: 7, Failed: 5})
		put(job+"Report", rep, err)
		sum, err := summary(ctx, st, id)
		put(job+"Summary", sum, err)
		recs, err := records(ctx, st, id, jobs.RecordOptions{Bodies: i == 1})
		put(job+"Records", len(recs), err)
		for k, r := range recs { // one by one, so that a difference names its record
			put(fmt.Sprintf("%sRecords[%03d]", job, k), flatten(r), nil)
		}
		m, err := st.Models(ctx, id)
		put(job+"Models", m, err)
		m, err = st.OpenModels(ctx, id)
		put(job+"OpenModels", m, err)
		msgs, n, err := st.InvalidLines(ctx, id, 3)
		put(job+"InvalidLines", fmt.Sprint(msgs, n), err)
	}
	return out
}

// summary is a summary's counts and its finish.
func summary(ctx context.Context, st jobs.Store, jobID int64) ([2]jobs.Stats, error) {
	sum, err := st.BeginSummary(ctx, jobID)
	if err != nil {
		return [2]jobs.Stats{}, err
	}
	defer sum.Close()
	fin, err := sum.Finish(ctx)
	return [2]jobs.Stats{sum.Counts(), fin}, err
}

// records reads the job's records with the ids, which each engine numbers
// its own way, left out.
func records(ctx context.Context, st jobs.Store, jobID int64, opts jobs.RecordOptions) ([]jobs.Record, error) {
	var recs []jobs.Record
	err := st.RecordsWith(ctx, jobID, opts, func(r jobs.Record) error {
		r.Request.ID = 0
		if r.Result != nil {
			r.Result.RequestID = 0
		}
		recs = append(recs, r)
		return nil
	})
	return recs, err
}

// flatRecord is a record with its result and failure as values, which
// a difference prints in full (not as addresses).
type flatRecord struct {
	Request         jobs.Request
	Result, Failure any
}

func flatten(r jobs.Record) flatRecord {
	f := flatRecord{Request: r.Request}
	if r.Result != nil {
		f.Result = *r.Result
	}
	if r.Failure != nil {
		f.Failure = *r.Failure
	}
	return f
}

func sortedKeys(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// source hands out requests, keeping those marked invalid (as import
// --skip-invalid does).
type source struct {
	reqs []jobs.Request
	next int
}

func (s *source) KeepsInvalid() bool { return true }
func (s *source) Reject(int, string) {}
func (s *source) Err() error         { return nil }

func (s *source) Next() (jobs.Request, error) {
	if s.next >= len(s.reqs) {
		return jobs.Request{}, io.EOF
	}
	s.next++
	return s.reqs[s.next-1], nil
}

func mustImport(t *testing.T, st jobs.Store, name string, reqs []jobs.Request) jobs.Job {
	t.Helper()
	job, err := st.Import(t.Context(), jobs.Job{Name: name, Source: "in.jsonl"}, &source{reqs: reqs})
	if err != nil {
		t.Fatalf("Import(%q): %v", name, err)
	}
	return job
}
