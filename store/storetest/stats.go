package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// knownOutcomes records, on 16 requests (lines 1-4 of model m-r1, the rest
// m-v3): 11 successes with latencies 1100ms down to 100ms, the first 4
// streamed (TTFT 10-40ms), the first 10 with usage; 2 permanent failures;
// one request rate limited three times; one handed back; one left running.
func knownOutcomes(t *testing.T, st jobs.Store) jobs.Job {
	t.Helper()
	in := chats(16)
	for i := range 4 {
		in[i].Model = "m-r1"
	}
	job := mustImport(t, st, "stats", in)
	reqs := mustClaim(t, st, job.ID, 16)
	var batch []jobs.Outcome
	for i, r := range reqs[:11] {
		o := timed(succeed(r), t0, time.Duration(11-i)*100*time.Millisecond)
		o.Result.Latency = o.Attempt.Duration
		if i < 4 {
			o.Result.TTFT = time.Duration(i+1) * 10 * time.Millisecond
		}
		if i < 10 {
			o.Result.Usage = jobs.Usage{Known: true, PromptTokens: 10, CompletionTokens: 20, ReasoningTokens: 5,
				CachedTokens: 2, TotalTokens: 30}
		}
		batch = append(batch, o)
	}
	batch = append(batch, failPermanently(reqs[11], "bad top_p"), failPermanently(reqs[12], "bad top_k"),
		rateLimited(reqs[13], "slow down 1", time.Time{}), handBack(reqs[15])) // line 15 stays running
	mustRecord(t, st, batch...)
	for _, msg := range []string{"slow down 2", "slow down 3"} { // line 14 comes back twice more
		again := mustClaim(t, st, job.ID, 2)
		if len(again) != 2 || again[0].Line != 14 || again[1].Line != 16 {
			t.Fatalf("claimed lines %v, want [14 16]", linesOf(again))
		}
		mustRecord(t, st, rateLimited(again[0], msg, time.Time{}), handBack(again[1]))
	}
	return job
}

func testStatsAfterKnownOutcomes(t *testing.T, st jobs.Store) {
	job := knownOutcomes(t, st)
	got := mustStats(t, st, job.ID)
	if got.Job.ID != job.ID || got.Job.Name != "stats" || got.Job.Total != 16 {
		t.Errorf("Job = %+v, want job %d \"stats\" with Total 16", got.Job, job.ID)
	}
	if want := counts(2, 1, 11, 2, 0); !sameCounts(got.Counts, want) {
		t.Errorf("Counts = %v, want %v", got.Counts, want)
	}
	perResult := jobs.Usage{Known: true, PromptTokens: 10, CompletionTokens: 20, ReasoningTokens: 5, CachedTokens: 2, TotalTokens: 30}
	times := func(u jobs.Usage, n int64) jobs.Usage {
		return jobs.Usage{Known: u.Known, PromptTokens: n * u.PromptTokens, CompletionTokens: n * u.CompletionTokens,
			ReasoningTokens: n * u.ReasoningTokens, CachedTokens: n * u.CachedTokens, TotalTokens: n * u.TotalTokens}
	}
	if want := times(perResult, 10); got.Usage != want || got.ResultsWithoutUsage != 1 {
		t.Errorf("Usage = %+v with %d results without, want %+v with 1", got.Usage, got.ResultsWithoutUsage, want)
	}
	wantModels := []jobs.ModelUsage{{Model: "m-r1", Results: 4, Usage: times(perResult, 4)},
		{Model: "m-v3", Results: 7, Usage: times(perResult, 6), WithoutUsage: 1}}
	if !slices.Equal(got.Models, wantModels) {
		t.Errorf("Models = %+v,\nwant %+v", got.Models, wantModels)
	}
	if got.Attempts != 16 || got.Cached != 0 {
		t.Errorf("Attempts = %d, Cached = %d; want 16 (11 ok, 2 failed, 3 rate limited), 0", got.Attempts, got.Cached)
	}
	checkErrorClasses(t, got.Errors)
	checkPercentiles(t, got)
	if !got.FirstAttempt.Equal(t0) || !got.LastAttempt.Equal(t0.Add(1100*time.Millisecond)) {
		t.Errorf("attempts from %v to %v, want %v to %v", got.FirstAttempt, got.LastAttempt, t0, t0.Add(1100*time.Millisecond))
	}
	// Every attempt is long past by any clock an engine reads.
	if got.At.IsZero() || !got.At.After(t0) || !got.Last1m.Idle() || !got.Last5m.Idle() {
		t.Errorf("At = %v, Last1m = %+v, Last5m = %+v; want a time after the attempts, both idle", got.At, got.Last1m, got.Last5m)
	}
}

// checkErrorClasses checks the failed attempts by class of knownOutcomes,
// most frequent first, each with one of its messages.
func checkErrorClasses(t *testing.T, got []jobs.ClassCount) {
	t.Helper()
	want := []struct {
		class    jobs.ErrorClass
		count    int
		examples []string
	}{
		{jobs.ClassRateLimited, 3, []string{"slow down 1", "slow down 2", "slow down 3"}},
		{jobs.ClassInvalidRequest, 2, []string{"bad top_p", "bad top_k"}},
	}
	if len(got) != len(want) {
		t.Fatalf("Errors = %+v, want %d classes", got, len(want))
	}
	for i, w := range want {
		if e := got[i]; e.Class != w.class || e.Count != w.count || !slices.Contains(w.examples, e.Example) {
			t.Errorf("Errors[%d] = %+v, want %s × %d with one of %q", i, e, w.class, w.count, w.examples)
		}
	}
}

// checkPercentiles checks the nearest-rank percentiles of knownOutcomes:
// latencies 100-1100ms (ranks 6, 11, 11) and, of the streamed results
// only, times to first token 10-40ms (ranks 2, 4, 4).
func checkPercentiles(t *testing.T, got jobs.Stats) {
	t.Helper()
	ms := time.Millisecond
	gotAll := []time.Duration{got.LatencyP50, got.LatencyP95, got.LatencyP99, got.TTFTP50, got.TTFTP95, got.TTFTP99}
	if want := []time.Duration{600 * ms, 1100 * ms, 1100 * ms, 20 * ms, 40 * ms, 40 * ms}; !slices.Equal(gotAll, want) {
		t.Errorf("latency p50 p95 p99, TTFT p50 p95 p99 = %v, want %v", gotAll, want)
	}
}

func testStatsOfNewJob(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "fresh", chats(3))
	got := mustStats(t, st, job.ID)
	if want := counts(3, 0, 0, 0, 0); !sameCounts(got.Counts, want) {
		t.Errorf("Counts = %v, want %v", got.Counts, want)
	}
	if got.Usage != (jobs.Usage{}) || got.Attempts != 0 || got.Cached != 0 || len(got.Errors) != 0 || len(got.Models) != 0 ||
		got.LatencyP50 != 0 || got.TTFTP99 != 0 || !got.FirstAttempt.IsZero() || !got.LastAttempt.IsZero() || !got.Last5m.Idle() {
		t.Errorf("Stats = %+v, want nothing done yet", got)
	}
	if _, err := st.Stats(t.Context(), job.ID+1000); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Stats(missing job) error = %v, want ErrNotFound", err)
	}
}

// testStatsThroughput: the windows, which end when Stats reads, count the
// requests whose last attempt ended in them, with the tokens of the
// successes, over a span that begins at the earliest start among them.
// The attempts are placed on the real clock, which Stats.At reads too.
func testStatsThroughput(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "rate", chats(5))
	now := time.Now().Truncate(time.Millisecond)
	reqs := mustClaim(t, st, job.ID, 5)
	tokens := func(o jobs.Outcome, n int64) jobs.Outcome {
		o.Result.Usage = jobs.Usage{Known: true, TotalTokens: n}
		return o
	}
	mustRecord(t, st,
		timed(tokens(succeed(reqs[0]), 100), now.Add(-30*time.Second), time.Second),      // both windows
		timed(tokens(succeed(reqs[1]), 50), now.Add(-3*time.Minute), 2*time.Second),      // 5m only
		timed(rateLimited(reqs[2], "slow", t0), now.Add(-25*time.Second), 5*time.Second), // retried: not counted
		timed(tokens(succeed(reqs[3]), 7), now.Add(-8*time.Minute), time.Second),         // neither
		timed(failPermanently(reqs[4], "bad"), now.Add(-11*time.Second), time.Second),    // both windows
	)
	got := mustStats(t, st, job.ID)
	if got.At.Before(now) || got.At.After(now.Add(time.Minute)) {
		t.Fatalf("At = %v, want the time Stats read, just after %v", got.At, now)
	}
	spanFrom := func(start time.Time) time.Duration { return got.At.Sub(start) }
	want1 := jobs.Throughput{Window: time.Minute, Span: spanFrom(now.Add(-30 * time.Second)), Requests: 2, Tokens: 100, TokensKnown: true}
	want5 := jobs.Throughput{Window: 5 * time.Minute, Span: spanFrom(now.Add(-3 * time.Minute)), Requests: 3, Tokens: 150, TokensKnown: true}
	if got.Last1m != want1 || got.Last5m != want5 {
		t.Errorf("Last1m = %+v, Last5m = %+v;\nwant %+v, %+v", got.Last1m, got.Last5m, want1, want5)
	}
	if !got.FirstAttempt.Equal(now.Add(-8*time.Minute)) || !got.LastAttempt.Equal(now.Add(-10*time.Second)) {
		t.Errorf("attempts from %v to %v, want now-8m to now-10s", got.FirstAttempt, got.LastAttempt)
	}
}

// testSummarySnapshot: a summary's figures are those of the moment
// BeginSummary read, even when outcomes are recorded before Finish.
func testSummarySnapshot(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "summary", chats(6))
	reqs := mustClaim(t, st, job.ID, 6)
	first := answer(reqs[0], "first", time.Second)
	mustRecord(t, st, first, failPermanently(reqs[1], "bad"))
	sum, err := st.BeginSummary(t.Context(), job.ID)
	if err != nil {
		t.Fatalf("BeginSummary: %v", err)
	}
	defer sum.Close()
	mustRecord(t, st, answer(reqs[2], "later", time.Second)) // after the summary's moment
	want := counts(0, 4, 1, 1, 0)
	if got := sum.Counts(); got.Job.Name != "summary" || got.Job.Total != 6 || !sameCounts(got.Counts, want) {
		t.Errorf("Counts() = job %+v, %v; want summary with 6 requests, %v", got.Job, got.Counts, want)
	}
	got, err := sum.Finish(t.Context())
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	sum.Close() // safe after Finish
	if !sameCounts(got.Counts, want) || got.Usage.TotalTokens != 15 || len(got.Models) != 1 || got.Models[0].Results != 1 {
		t.Errorf("Finish() = %v, usage %+v, models %+v; want the snapshot's: %v, 15 tokens of one result",
			got.Counts, got.Usage, got.Models, want)
	}
	again, err := st.BeginSummary(t.Context(), job.ID)
	if err != nil {
		t.Fatalf("BeginSummary: %v", err)
	}
	if now, err := again.Finish(t.Context()); err != nil || now.Usage.TotalTokens != 30 || now.Counts[jobs.StatusSucceeded] != 2 {
		t.Errorf("a new summary: %+v, %v; want 30 tokens, 2 succeeded", now.Usage, err)
	}
	if _, err := st.BeginSummary(t.Context(), job.ID+1000); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("BeginSummary(missing job) = %v, want ErrNotFound", err)
	}
}

func testModels(t *testing.T, st jobs.Store) {
	in := chats(4)
	for i, m := range []string{"b-model", "a-model", "b-model", "c-model"} {
		in[i].Model = m
	}
	job := mustImport(t, st, "models", in)
	reqs := mustClaim(t, st, job.ID, 3)
	mustRecord(t, st, succeed(reqs[0]), succeed(reqs[1])) // line 3 stays running
	for _, tc := range []struct {
		name string
		list func() ([]string, error)
		want []string
	}{
		{"Models", func() ([]string, error) { return st.Models(t.Context(), job.ID) }, []string{"a-model", "b-model", "c-model"}},
		{"OpenModels", func() ([]string, error) { return st.OpenModels(t.Context(), job.ID) }, []string{"b-model", "c-model"}},
	} {
		if got, err := tc.list(); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s() = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
