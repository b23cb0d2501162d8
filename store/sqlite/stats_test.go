package sqlite

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

func counts(pending, running, succeeded, failed, cancelled int) map[jobs.Status]int {
	return map[jobs.Status]int{jobs.StatusPending: pending, jobs.StatusRunning: running,
		jobs.StatusSucceeded: succeeded, jobs.StatusFailed: failed, jobs.StatusCancelled: cancelled}
}

func rateLimited(r jobs.Request, msg string) jobs.Outcome {
	return jobs.Outcome{Request: r, Next: jobs.StatusPending, CountAttempt: true,
		Attempt: &jobs.Attempt{Number: r.Attempts + 1, StartedAt: t0, StatusCode: 429, Class: jobs.ClassRateLimited, Message: msg},
		Failure: &jobs.Failure{Class: jobs.ClassRateLimited, StatusCode: 429, Message: msg}}
}

func TestStats(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "stats", chatRequests(16))
	reqs := mustClaim(t, s, job.ID, 16)
	var batch []jobs.Outcome
	for i, r := range reqs[:11] { // latencies 1100ms down to 100ms
		o := succeed(r)
		o.Result.Latency = time.Duration(11-i) * 100 * time.Millisecond
		if i < 10 {
			o.Result.Usage = jobs.Usage{Known: true, PromptTokens: 10, CompletionTokens: 20, ReasoningTokens: 5,
				CachedTokens: 2, TotalTokens: 30}
		}
		batch = append(batch, o)
	}
	f1, f2 := failPermanently(reqs[11]), failPermanently(reqs[12])
	f1.Attempt.Message, f2.Attempt.Message = "bad top_p", "bad top_k"
	batch = append(batch, f1, f2, rateLimited(reqs[13], "slow down 1"),
		jobs.Outcome{Request: reqs[15], Next: jobs.StatusPending}) // line 15 stays running
	mustRecord(t, s, batch...)
	for _, msg := range []string{"slow down 2", "slow down 3"} { // line 14 comes back twice more
		again := mustClaim(t, s, job.ID, 1)
		if len(again) != 1 || again[0].Line != 14 {
			t.Fatalf("claimed %v, want line 14", linesOf(again))
		}
		mustRecord(t, s, rateLimited(again[0], msg))
	}
	mustExec(t, s, `UPDATE requests SET status = 'cancelled' WHERE id = ?`, reqs[15].ID)

	got, err := s.Stats(ctx, job.ID)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if got.Job.ID != job.ID || got.Job.Name != "stats" || got.Job.Total != 16 {
		t.Errorf("Job = %+v, want job %d \"stats\" with Total 16", got.Job, job.ID)
	}
	if want := counts(1, 1, 11, 2, 1); !maps.Equal(got.Counts, want) {
		t.Errorf("Counts = %v, want %v", got.Counts, want)
	}
	wantUsage := jobs.Usage{Known: true, PromptTokens: 100, CompletionTokens: 200, ReasoningTokens: 50,
		CachedTokens: 20, TotalTokens: 300}
	if got.Usage != wantUsage {
		t.Errorf("Usage = %+v, want %+v", got.Usage, wantUsage)
	}
	if got.ResultsWithoutUsage != 1 || len(got.Models) != 1 || got.Models[0].WithoutUsage != 1 {
		t.Errorf("ResultsWithoutUsage = %d, Models = %+v; want 1 of 11 results without usage", got.ResultsWithoutUsage, got.Models)
	}
	if got.Attempts != 16 {
		t.Errorf("Attempts = %d, want 16 (11 ok + 2 failed + 3 rate limited)", got.Attempts)
	}
	wantClasses := []struct {
		class    jobs.ErrorClass
		count    int
		examples []string
	}{
		{jobs.ClassRateLimited, 3, []string{"slow down 1", "slow down 2", "slow down 3"}},
		{jobs.ClassInvalidRequest, 2, []string{"bad top_p", "bad top_k"}},
	}
	if len(got.Errors) != len(wantClasses) {
		t.Fatalf("Errors = %+v, want %d classes", got.Errors, len(wantClasses))
	}
	for i, w := range wantClasses {
		e := got.Errors[i]
		if e.Class != w.class || e.Count != w.count || !slices.Contains(w.examples, e.Example) {
			t.Errorf("Errors[%d] = %+v, want %s × %d with one of %q", i, e, w.class, w.count, w.examples)
		}
	}
	if got.LatencyP50 != 600*time.Millisecond || got.LatencyP95 != 1100*time.Millisecond {
		t.Errorf("latency p50, p95 = %v, %v; want 600ms, 1.1s", got.LatencyP50, got.LatencyP95)
	}
}

func TestStatsEmptyAndMissing(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "fresh", chatRequests(3))
	got, err := s.Stats(ctx, job.ID)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if want := counts(3, 0, 0, 0, 0); !maps.Equal(got.Counts, want) {
		t.Errorf("Counts = %v, want %v (every status present)", got.Counts, want)
	}
	if got.Usage != (jobs.Usage{}) || got.Attempts != 0 || len(got.Errors) != 0 || got.LatencyP50 != 0 || got.LatencyP95 != 0 {
		t.Errorf("Stats = %+v, want no usage, attempts, errors or latency", got)
	}
	if got.Usage.Known {
		t.Error("Usage.Known = true for a job without results")
	}
	if _, err := s.Stats(ctx, 999); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Stats(missing) error = %v, want ErrNotFound", err)
	}
}

func TestStatsUsageUnknown(t *testing.T) {
	s := mustOpenStore(t)
	job := mustImport(t, s, "unknown", chatRequests(2))
	reqs := mustClaim(t, s, job.ID, 2)
	mustRecord(t, s, succeed(reqs[0]), succeed(reqs[1])) // no usage in either answer
	got, err := s.Stats(context.Background(), job.ID)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if got.Usage != (jobs.Usage{}) {
		t.Errorf("Usage = %+v, want unknown and zero", got.Usage)
	}
}

// TestStatsResultsWithoutUsage: the results whose answer reported no
// usage are counted per model and in all, so that the usage can be shown
// as a lower bound; results copied from the cache and failures are not.
func TestStatsResultsWithoutUsage(t *testing.T) {
	s := mustOpenStore(t)
	in := chatRequests(6)
	for i := range in {
		if i < 3 {
			in[i].Model = "deepseek/deepseek-r1"
		}
	}
	job := mustImport(t, s, "partial", in)
	reqs := mustClaim(t, s, job.ID, 6)
	known := func(o jobs.Outcome) jobs.Outcome {
		o.Result.Usage = jobs.Usage{Known: true, PromptTokens: 5, CompletionTokens: 7, TotalTokens: 12}
		return o
	}
	mustRecord(t, s, known(succeed(reqs[0])), known(succeed(reqs[1])), succeed(reqs[2]), // r1: 1 of 3 unknown
		succeed(reqs[3]), succeed(reqs[4]), failPermanently(reqs[5])) // v3: 2 unknown, one of them cached
	mustExec(t, s, `UPDATE results SET cached = 1 WHERE request_id = ?`, reqs[4].ID)

	got, err := s.Stats(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	type model struct {
		name             string
		results, without int
		known            bool
		totalTokens      int64
	}
	var models []model
	for _, m := range got.Models {
		models = append(models, model{m.Model, m.Results, m.WithoutUsage, m.Usage.Known, m.Usage.TotalTokens})
	}
	want := []model{{"deepseek/deepseek-r1", 3, 1, true, 24}, {"deepseek/deepseek-v3", 1, 1, false, 0}}
	if !slices.Equal(models, want) {
		t.Errorf("Models = %+v, want %+v", models, want)
	}
	if got.ResultsWithoutUsage != 2 || got.Usage.TotalTokens != 24 || !got.Usage.Known {
		t.Errorf("ResultsWithoutUsage = %d, Usage = %+v; want 2 without usage, 24 tokens known", got.ResultsWithoutUsage, got.Usage)
	}
	// A run's summary reads the same count.
	sum, err := s.BeginSummary(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fin, err := sum.Finish(context.Background()); err != nil || fin.ResultsWithoutUsage != 2 {
		t.Errorf("Summary.Finish = %d without usage, %v; want 2", fin.ResultsWithoutUsage, err)
	}
}

// TestStatsLatencyNearestRank checks p50 and p95 against the nearest-rank
// definition: the value of rank ceil(p·n) in ascending order.
func TestStatsLatencyNearestRank(t *testing.T) {
	tests := []struct {
		n                int // latencies are 1..n × 10ms, recorded in reverse
		wantP50, wantP95 int
	}{
		{1, 1, 1},
		{2, 1, 2},
		{10, 5, 10},
		{11, 6, 11},  // p95 rank ceil(10.45) = 11, not round(10.45) = 10
		{20, 10, 19}, // p95 rank exactly 19
		{39, 20, 38}, // p95 rank ceil(37.05) = 38
		{100, 50, 95},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("N%d", tt.n), func(t *testing.T) {
			s := mustOpenStore(t)
			job := mustImport(t, s, "latency", chatRequests(tt.n))
			reqs := mustClaim(t, s, job.ID, tt.n)
			var batch []jobs.Outcome
			for i, r := range reqs {
				o := succeed(r)
				o.Result.Latency = time.Duration(tt.n-i) * 10 * time.Millisecond
				batch = append(batch, o)
			}
			mustRecord(t, s, batch...)
			got, err := s.Stats(context.Background(), job.ID)
			if err != nil {
				t.Fatalf("Stats: %v", err)
			}
			wantP50 := time.Duration(tt.wantP50) * 10 * time.Millisecond
			wantP95 := time.Duration(tt.wantP95) * 10 * time.Millisecond
			if got.LatencyP50 != wantP50 || got.LatencyP95 != wantP95 {
				t.Errorf("p50, p95 = %v, %v; want %v, %v", got.LatencyP50, got.LatencyP95, wantP50, wantP95)
			}
		})
	}
}

// ended returns o with its attempt started at start and lasting d.
func ended(o jobs.Outcome, start time.Time, d time.Duration) jobs.Outcome {
	o.Attempt.StartedAt, o.Attempt.Duration = start, d
	return o
}

// TestStatsThroughput: the windows count the requests whose last attempt
// ended in them (a success or a final failure, not a retried attempt),
// with the tokens of the successes, over a span cut to the earliest start
// among them; the active span runs from the first attempt's start to the
// last one's end.
func TestStatsThroughput(t *testing.T) {
	ctx := context.Background()
	s, clock := mustOpenStoreAt(t, t.TempDir()+"/llmbatch.db")
	job := mustImport(t, s, "rate", chatRequests(5))
	now := t0.Add(10 * time.Minute)
	reqs := mustClaim(t, s, job.ID, 5)
	tokens := func(o jobs.Outcome, n int64) jobs.Outcome {
		o.Result.Usage = jobs.Usage{Known: true, TotalTokens: n}
		return o
	}
	mustRecord(t, s,
		ended(tokens(succeed(reqs[0]), 100), now.Add(-30*time.Second), time.Second),  // both windows
		ended(tokens(succeed(reqs[1]), 50), now.Add(-3*time.Minute), 2*time.Second),  // 5m only
		ended(rateLimited(reqs[2], "slow"), now.Add(-25*time.Second), 5*time.Second), // retried: not counted
		ended(tokens(succeed(reqs[3]), 7), now.Add(-8*time.Minute), time.Second),     // neither
	) // reqs[4] stays running
	clock.Advance(10 * time.Minute)
	again := mustClaim(t, s, job.ID, 1)
	mustRecord(t, s, ended(failPermanently(again[0]), now.Add(-11*time.Second), time.Second)) // both windows

	got, err := s.Stats(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.At.Equal(now) {
		t.Errorf("At = %v, want the store's clock %v", got.At, now)
	}
	want1 := jobs.Throughput{Window: time.Minute, Span: 30 * time.Second, Requests: 2, Tokens: 100, TokensKnown: true}
	want5 := jobs.Throughput{Window: 5 * time.Minute, Span: 3 * time.Minute, Requests: 3, Tokens: 150, TokensKnown: true}
	if got.Last1m != want1 {
		t.Errorf("Last1m = %+v, want %+v", got.Last1m, want1)
	}
	if got.Last5m != want5 {
		t.Errorf("Last5m = %+v, want %+v", got.Last5m, want5)
	}
	if !got.FirstAttempt.Equal(now.Add(-8*time.Minute)) || !got.LastAttempt.Equal(now.Add(-10*time.Second)) {
		t.Errorf("active %v to %v, want now-8m to now-10s", got.FirstAttempt, got.LastAttempt)
	}

	clock.Advance(time.Hour)
	got, err = s.Stats(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Last1m.Idle() || !got.Last5m.Idle() || got.Last5m.Span != 0 {
		t.Errorf("an hour later: Last1m %+v, Last5m %+v; want both idle", got.Last1m, got.Last5m)
	}
}

// TestStatsP99 checks the p99 by nearest rank, of latency and of the time
// to first token of the streamed results only.
func TestStatsP99(t *testing.T) {
	s := mustOpenStore(t)
	job := mustImport(t, s, "p99", chatRequests(200))
	var batch []jobs.Outcome
	for i, r := range mustClaim(t, s, job.ID, 200) {
		o := succeed(r)
		o.Result.Latency = time.Duration(200-i) * time.Millisecond // 1..200ms
		if i%2 == 0 {
			o.Result.TTFT = time.Duration(i+1) * time.Millisecond // 1, 3, …, 199ms: 100 values
		}
		batch = append(batch, o)
	}
	mustRecord(t, s, batch...)
	got, err := s.Stats(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	// rank ceil(0.99·200) = 198; ceil(0.99·100) = 99, the 99th odd number.
	if got.LatencyP99 != 198*time.Millisecond || got.TTFTP99 != 197*time.Millisecond || got.TTFTP50 != 99*time.Millisecond {
		t.Errorf("latency p99 %v, ttft p50 %v p99 %v; want 198ms, 99ms, 197ms", got.LatencyP99, got.TTFTP50, got.TTFTP99)
	}
}

// TestStatsThroughputCountsARequestOnce: an attempt that used no attempt
// of its request (a fatal 402 before a resume) and the attempts before a
// `retry` share their numbers with the later ones, so a request that then
// fails for good has two failed attempts numbered like its last: it still
// completed once.
func TestStatsThroughputCountsARequestOnce(t *testing.T) {
	s, clock := mustOpenStoreAt(t, t.TempDir()+"/llmbatch.db")
	job := mustImport(t, s, "once", chatRequests(2))
	now := t0.Add(10 * time.Minute)
	clock.Advance(10 * time.Minute)
	reqs := mustClaim(t, s, job.ID, 2)
	payment := jobs.Outcome{Request: reqs[0], Next: jobs.StatusPending, // fatal: the attempt is not used up
		Attempt: &jobs.Attempt{Number: 1, StatusCode: 402, Class: jobs.ClassPayment, Message: "no balance"},
		Failure: &jobs.Failure{Class: jobs.ClassPayment, StatusCode: 402, Message: "no balance"}}
	mustRecord(t, s, ended(payment, now.Add(-4*time.Minute), time.Second),
		ended(failPermanently(reqs[1]), now.Add(-4*time.Minute), time.Second))
	if _, err := s.Retry(context.Background(), job.ID); err != nil { // reqs[1]: attempts back to 0
		t.Fatal(err)
	}
	var batch []jobs.Outcome
	for _, r := range mustClaim(t, s, job.ID, 2) {
		batch = append(batch, ended(failPermanently(r), now.Add(-2*time.Minute), time.Second))
	}
	mustRecord(t, s, batch...)

	got, err := s.Stats(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Counts[jobs.StatusFailed] != 2 || got.Last5m.Requests != 2 {
		t.Errorf("%d failed, Last5m.Requests = %d; want 2 requests completed, each once", got.Counts[jobs.StatusFailed], got.Last5m.Requests)
	}
	if want := 2 * time.Minute; got.Last5m.Span != want {
		t.Errorf("Last5m.Span = %v, want %v: from the start of the last attempts, not of the superseded ones", got.Last5m.Span, want)
	}
}
