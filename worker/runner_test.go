package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
)

// fastRetry keeps retried requests from slowing the tests down.
var fastRetry = RetryPolicy{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}

// newTestRunner returns a runner of the job against the fake.
func newTestRunner(q jobs.Queue, jobID int64, fake *fakeapi.Server, opts Options) *Runner {
	if opts.Retry == (RetryPolicy{}) {
		opts.Retry = fastRetry
	}
	return New(q, jobID, newTestClient(fake.URL(), ClientOptions{Conns: opts.Concurrency}), opts)
}

// runAsync starts r.Run(ctx) and returns a channel that yields its error.
func runAsync(ctx context.Context, r *Runner) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return done
}

// mustReturn waits up to timeout for Run's error.
func mustReturn(t *testing.T, done <-chan error, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		t.Fatalf("Run did not return within %s", timeout)
		return nil
	}
}

// checkUntouched fails for each request of recs that is not pending with no
// attempt used, as an interrupted or refused request must be.
func checkUntouched(t *testing.T, recs []jobs.Record) {
	t.Helper()
	for _, r := range recs {
		if r.Request.Status != jobs.StatusPending || r.Request.Attempts != 0 || r.Result != nil {
			t.Errorf("%s: status %s, attempts %d, result %v; want pending, 0 attempts, no result",
				r.Request.CustomID, r.Request.Status, r.Request.Attempts, r.Result != nil)
		}
	}
}

func TestRunnerAllSucceedGroupCommit(t *testing.T) {
	const n, concurrency = 2000, 64
	st := mustOpenStore(t)
	jobID := mustImport(t, st, n)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	r := newTestRunner(st, jobID, fake, Options{Concurrency: concurrency, MaxAttempts: 3})
	start := time.Now()
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	elapsed := time.Since(start)

	recs := records(t, st, jobID)
	if got := countStatus(recs); got[jobs.StatusSucceeded] != n {
		t.Fatalf("statuses %v, want all %d succeeded", got, n)
	}
	for i, rec := range recs {
		want := "echo: " + promptKey(i+1)
		if rec.Result == nil || rec.Result.Content != want || rec.Request.Attempts != 1 {
			t.Fatalf("%s: result %+v, attempts %d; want content %q after 1 attempt",
				rec.Request.CustomID, rec.Result, rec.Request.Attempts, want)
		}
	}
	fs := fake.Stats()
	if fs.Calls != n || fs.Served != n || len(fs.DuplicateKeys()) != 0 {
		t.Errorf("fake saw %d calls, served %d, duplicates %v; want exactly one call per request",
			fs.Calls, fs.Served, fs.DuplicateKeys())
	}
	stats, err := st.Stats(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Attempts != n || stats.Usage.TotalTokens != fs.Usage.TotalTokens {
		t.Errorf("store: %d attempts, %d tokens; want %d, %d (the fake's)", stats.Attempts,
			stats.Usage.TotalTokens, n, fs.Usage.TotalTokens)
	}

	commits, outcomes := r.Stats()
	t.Logf("%d requests in %v (%.0f/s): %d outcomes in %d commits, %.1f outcomes per commit",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), outcomes, commits, float64(outcomes)/float64(commits))
	if outcomes != n {
		t.Errorf("Stats outcomes = %d, want %d", outcomes, n)
	}
	// How many outcomes a commit holds depends on how fast answers come
	// compared with an fsync (4-7 under -race on a loaded 2-core machine,
	// dozens without); one commit per outcome would mean no group commit.
	if commits*2 >= outcomes {
		t.Errorf("%d commits for %d outcomes, want fewer than one per 2 (group commit)", commits, outcomes)
	}
}

func TestRunnerConcurrencyBound(t *testing.T) {
	for _, concurrency := range []int{1, 8} {
		t.Run(fmt.Sprint(concurrency), func(t *testing.T) {
			const n = 60
			st := mustOpenStore(t)
			jobID := mustImport(t, st, n)
			fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 10 * time.Millisecond})
			r := newTestRunner(st, jobID, fake, Options{Concurrency: concurrency, MaxAttempts: 1})
			if err := r.Run(context.Background()); err != nil {
				t.Fatalf("Run: %v", err)
			}
			fs := fake.Stats()
			if fs.Served != n {
				t.Errorf("served %d, want %d", fs.Served, n)
			}
			if fs.MaxInFlight > int64(concurrency) {
				t.Errorf("MaxInFlight = %d, want at most the concurrency %d", fs.MaxInFlight, concurrency)
			}
			if concurrency > 1 && fs.MaxInFlight < 2 {
				t.Errorf("MaxInFlight = %d: requests never overlapped at concurrency %d", fs.MaxInFlight, concurrency)
			}
			t.Logf("MaxInFlight %d at concurrency %d", fs.MaxInFlight, concurrency)
		})
	}
}

// callLog records when the fake saw each call, per request.
type callLog struct {
	mu    sync.Mutex
	times map[string][]time.Time
}

func (l *callLog) add(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.times == nil {
		l.times = map[string][]time.Time{}
	}
	l.times[key] = append(l.times[key], time.Now())
}

func (l *callLog) get(key string) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.times[key]...)
}

func TestRunnerRetryWaitsNotBefore(t *testing.T) {
	tests := []struct {
		name    string
		fault   fakeapi.Fault
		retry   RetryPolicy
		minWait time.Duration
		class   jobs.ErrorClass
	}{
		{"Backoff", fakeapi.Fault{Status: 500}, RetryPolicy{Initial: 200 * time.Millisecond, Max: 400 * time.Millisecond},
			150 * time.Millisecond, jobs.ClassServer},
		{"RetryAfterMS", fakeapi.Fault{Status: 429, Header: map[string]string{"retry-after-ms": "300"}}, fastRetry,
			250 * time.Millisecond, jobs.ClassRateLimited},
		{"BadJSON", fakeapi.Fault{BadJSON: true}, RetryPolicy{Initial: 200 * time.Millisecond, Max: 400 * time.Millisecond},
			150 * time.Millisecond, jobs.ClassBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 5
			st := mustOpenStore(t)
			jobID := mustImport(t, st, n)
			var log callLog
			fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
				log.add(c.CustomKey)
				if c.Attempt == 1 {
					return tt.fault
				}
				return fakeapi.Fault{}
			}})
			r := newTestRunner(st, jobID, fake, Options{Concurrency: n, MaxAttempts: 3, Retry: tt.retry})
			if err := r.Run(context.Background()); err != nil {
				t.Fatalf("Run: %v", err)
			}
			for _, rec := range records(t, st, jobID) {
				key := strings.TrimPrefix(rec.Request.CustomID, "req-")
				times := log.get("prompt-" + key)
				if rec.Request.Status != jobs.StatusSucceeded || rec.Request.Attempts != 2 || len(times) != 2 {
					t.Errorf("%s: %s after %d attempts, %d calls; want succeeded after 2", rec.Request.CustomID,
						rec.Request.Status, rec.Request.Attempts, len(times))
					continue
				}
				if gap := times[1].Sub(times[0]); gap < tt.minWait {
					t.Errorf("%s: retried %v after the first attempt, want at least %v", rec.Request.CustomID, gap, tt.minWait)
				}
			}
			stats, err := st.Stats(context.Background(), jobID)
			if err != nil {
				t.Fatal(err)
			}
			if stats.Attempts != 2*n || len(stats.Errors) != 1 || stats.Errors[0].Class != tt.class || stats.Errors[0].Count != n {
				t.Errorf("store: %d attempts, errors %+v; want %d attempts, %d × %s", stats.Attempts, stats.Errors, 2*n, n, tt.class)
			}
		})
	}
}

func TestRunnerFailures(t *testing.T) {
	// prompt-1 always gets a 500, prompt-2 a 400; the others succeed.
	const n = 10
	st := mustOpenStore(t)
	jobID := mustImport(t, st, n)
	var calls [n + 1]atomic.Int64
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
		var i int
		fmt.Sscanf(c.CustomKey, "prompt-%d", &i)
		calls[i].Add(1)
		switch i {
		case 1:
			return fakeapi.Fault{Status: 500}
		case 2:
			return fakeapi.Fault{Status: 400, Body: `{"error":{"message":"bad temperature"}}`}
		}
		return fakeapi.Fault{}
	}})
	r := newTestRunner(st, jobID, fake, Options{Concurrency: 4, MaxAttempts: 3})
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v (failed requests end the job normally)", err)
	}
	recs := records(t, st, jobID)
	t.Run("MaxAttempts", func(t *testing.T) {
		rec := recs[0]
		if rec.Request.Status != jobs.StatusFailed || rec.Request.Attempts != 3 || calls[1].Load() != 3 {
			t.Errorf("%s: %s after %d attempts and %d calls, want failed after exactly 3",
				rec.Request.CustomID, rec.Request.Status, rec.Request.Attempts, calls[1].Load())
		}
		if f := rec.Failure; f == nil || f.Class != jobs.ClassServer || f.StatusCode != 500 || !strings.Contains(string(f.Body), "injected 500") {
			t.Errorf("failure = %+v, want server_error 500 with the body", f)
		}
	})
	t.Run("Permanent", func(t *testing.T) {
		rec := recs[1]
		if rec.Request.Status != jobs.StatusFailed || rec.Request.Attempts != 1 || calls[2].Load() != 1 {
			t.Errorf("%s: %s after %d attempts and %d calls, want failed after 1",
				rec.Request.CustomID, rec.Request.Status, rec.Request.Attempts, calls[2].Load())
		}
		if f := rec.Failure; f == nil || f.Class != jobs.ClassInvalidRequest || f.Message != "bad temperature" ||
			string(f.Body) != `{"error":{"message":"bad temperature"}}` {
			t.Errorf("failure = %+v, want invalid_request with the provider's body", f)
		}
	})
	t.Run("OthersSucceed", func(t *testing.T) {
		if got := countStatus(recs); got[jobs.StatusSucceeded] != n-2 || got[jobs.StatusFailed] != 2 {
			t.Errorf("statuses %v, want %d succeeded and 2 failed", got, n-2)
		}
	})
}

func TestRunnerFatalStopsRun(t *testing.T) {
	tests := []struct {
		name  string
		cfg   fakeapi.Config
		class jobs.ErrorClass
	}{
		{"401", fakeapi.Config{Key: "sk-the-right-key"}, jobs.ClassAuth},
		{"402", fakeapi.Config{Key: testKey, Script: func(fakeapi.Call) fakeapi.Fault { return fakeapi.Fault{Status: 402} }},
			jobs.ClassPayment},
		{"403", fakeapi.Config{Key: testKey, Script: func(fakeapi.Call) fakeapi.Fault { return fakeapi.Fault{Status: 403} }},
			jobs.ClassAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 50
			st := mustOpenStore(t)
			jobID := mustImport(t, st, n)
			fake := fakeapi.Start(t, tt.cfg)
			r := newTestRunner(st, jobID, fake, Options{Concurrency: 4, MaxAttempts: 3})
			err := mustReturn(t, runAsync(context.Background(), r), 10*time.Second)
			var fe *FatalError
			if !errors.Is(err, jobs.ErrFatalAPI) || !errors.As(err, &fe) || fe.Failure.Class != tt.class {
				t.Fatalf("Run = %v, want a %s *FatalError matching jobs.ErrFatalAPI", err, tt.class)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("the error repeats the API key: %v", err)
			}
			checkUntouched(t, records(t, st, jobID))
			if calls := fake.Stats().Calls; calls > 4 {
				t.Errorf("the fake got %d calls; the run should stop at the first refusal (at most the 4 in flight)", calls)
			}
		})
	}
}

func TestRunnerStopDrains(t *testing.T) {
	const n, concurrency = 40, 4
	st := mustOpenStore(t)
	jobID := mustImport(t, st, n)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 300 * time.Millisecond})
	r := newTestRunner(st, jobID, fake, Options{Concurrency: concurrency, MaxAttempts: 3})
	done := runAsync(context.Background(), r)
	waitFor(t, 5*time.Second, "requests in flight", func() bool { return fake.Stats().InFlight == concurrency })
	r.Stop()
	r.Stop() // a second Stop is harmless
	err := mustReturn(t, done, 10*time.Second)
	if !errors.Is(err, jobs.ErrInterrupted) {
		t.Fatalf("Run = %v, want jobs.ErrInterrupted", err)
	}
	recs := records(t, st, jobID)
	counts := countStatus(recs)
	fs := fake.Stats()
	if counts[jobs.StatusSucceeded] < concurrency || int64(counts[jobs.StatusSucceeded]) != fs.Served {
		t.Errorf("%d succeeded, fake served %d; want the %d+ in flight finished and recorded",
			counts[jobs.StatusSucceeded], fs.Served, concurrency)
	}
	if fs.Canceled != 0 {
		t.Errorf("fake saw %d calls abandoned; Stop must let calls in flight finish", fs.Canceled)
	}
	if counts[jobs.StatusPending]+counts[jobs.StatusSucceeded] != n || counts[jobs.StatusPending] == 0 {
		t.Errorf("statuses %v, want only succeeded and pending", counts)
	}
	var pending []jobs.Record
	for _, rec := range recs {
		if rec.Request.Status != jobs.StatusSucceeded {
			pending = append(pending, rec)
		}
	}
	checkUntouched(t, pending)
}

func TestRunnerHardStop(t *testing.T) {
	const n, concurrency = 20, 4
	st := mustOpenStore(t)
	jobID := mustImport(t, st, n)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(fakeapi.Call) fakeapi.Fault {
		return fakeapi.Fault{KeepAliveOnly: true}
	}})
	r := newTestRunner(st, jobID, fake, Options{Concurrency: concurrency, MaxAttempts: 3})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := runAsync(ctx, r)
	waitFor(t, 5*time.Second, "requests in flight", func() bool { return fake.Stats().InFlight == concurrency })
	cancel()
	start := time.Now()
	err := mustReturn(t, done, 5*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run returned %v after the cancel, want promptly", d)
	}
	if !errors.Is(err, jobs.ErrInterrupted) {
		t.Fatalf("Run = %v, want jobs.ErrInterrupted", err)
	}
	checkUntouched(t, records(t, st, jobID))
	stats, err := st.Stats(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Attempts != 0 {
		t.Errorf("%d attempts recorded, want none: abandoned calls are no attempts", stats.Attempts)
	}
}

// TestRunnerHardStopUnderLoad cancels busy runs at varying moments, so that
// some cancels land in the middle of a claim: a claim cut short must not
// leave requests running that nobody holds.
func TestRunnerHardStopUnderLoad(t *testing.T) {
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	for i := 0; i < 10; i++ {
		const n = 1000
		st := mustOpenStore(t)
		jobID := mustImport(t, st, n)
		// Small claims make a cancel during a claim likely.
		r := newTestRunner(st, jobID, fake, Options{Concurrency: 64, MaxAttempts: 3, ClaimBatch: 8})
		ctx, cancel := context.WithCancel(context.Background())
		done := runAsync(ctx, r)
		time.Sleep(time.Duration(30+10*i) * time.Millisecond)
		cancel()
		err := mustReturn(t, done, 5*time.Second)
		recs := records(t, st, jobID)
		counts := countStatus(recs)
		if err == nil && counts[jobs.StatusSucceeded] == n {
			continue // this machine was quicker than the cancel
		}
		if !errors.Is(err, jobs.ErrInterrupted) {
			t.Fatalf("cancel after %d ms: Run = %v, want jobs.ErrInterrupted", 30+10*i, err)
		}
		for _, rec := range recs {
			ok := rec.Request.Status == jobs.StatusSucceeded && rec.Request.Attempts == 1 && rec.Result != nil ||
				rec.Request.Status == jobs.StatusPending && rec.Request.Attempts == 0
			if !ok {
				t.Fatalf("cancel after %d ms: %s is %s after %d attempts (statuses %v); want succeeded, or pending with no attempt used",
					30+10*i, rec.Request.CustomID, rec.Request.Status, rec.Request.Attempts, counts)
			}
		}
	}
}

func TestRunnerHardStopWhileWaitingToRetry(t *testing.T) {
	st := mustOpenStore(t)
	jobID := mustImport(t, st, 3)
	// The fake answers once all three calls are in: the first 503's
	// Retry-After pauses the dispatch of every request not yet sent, so an
	// early answer would keep the others from being sent for ten minutes.
	var calls atomic.Int32
	allIn := make(chan struct{})
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(fakeapi.Call) fakeapi.Fault {
		if calls.Add(1) == 3 {
			close(allIn)
		}
		<-allIn
		return fakeapi.Fault{Status: 503, Header: map[string]string{"Retry-After": "600"}}
	}})
	r := newTestRunner(st, jobID, fake, Options{Concurrency: 3, MaxAttempts: 3})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := runAsync(ctx, r)
	waitFor(t, 20*time.Second, "three 503s recorded", func() bool {
		stats, err := st.Stats(context.Background(), jobID)
		return err == nil && stats.Attempts == 3
	})
	cancel() // the retries are due in ten minutes: only the cancel can end the run this soon
	if err := mustReturn(t, done, 20*time.Second); !errors.Is(err, jobs.ErrInterrupted) {
		t.Fatalf("Run = %v, want jobs.ErrInterrupted", err)
	}
	for _, rec := range records(t, st, jobID) {
		if rec.Request.Status != jobs.StatusPending || rec.Request.Attempts != 1 {
			t.Errorf("%s: %s, %d attempts; want pending after 1 attempt", rec.Request.CustomID, rec.Request.Status, rec.Request.Attempts)
		}
	}
	// The server's Retry-After is kept as the requests' not-before time.
	n, next, err := st.Waiting(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || next.Before(time.Now().Add(9*time.Minute)) {
		t.Errorf("Waiting = %d, %v; want 3 not before ~10 minutes from now", n, next)
	}
}

var errInjected = errors.New("injected: disk I/O error")

// failingQueue is a fault injector: the real store, whose Record fails
// from call number failFrom on.
type failingQueue struct {
	jobs.Store
	failFrom int64
	calls    atomic.Int64
	recorded atomic.Int64 // outcomes in the Record calls that succeeded
}

func (q *failingQueue) Record(ctx context.Context, outcomes []jobs.Outcome) error {
	if q.calls.Add(1) >= q.failFrom {
		return errInjected
	}
	err := q.Store.Record(ctx, outcomes)
	if err == nil {
		q.recorded.Add(int64(len(outcomes)))
	}
	return err
}

func TestRunnerStoreWriteFailure(t *testing.T) {
	t.Run("UnderLoad", func(t *testing.T) {
		const n = 500
		st := mustOpenStore(t)
		jobID := mustImport(t, st, n)
		fake := fakeapi.Start(t, fakeapi.Config{Key: testKey})
		q := &failingQueue{Store: st, failFrom: 3}
		r := newTestRunner(q, jobID, fake, Options{Concurrency: 16, MaxAttempts: 3})
		err := mustReturn(t, runAsync(context.Background(), r), 5*time.Second)
		if !errors.Is(err, errInjected) {
			t.Fatalf("Run = %v, want the store's error", err)
		}
		recs := records(t, st, jobID)
		counts := countStatus(recs)
		if int64(counts[jobs.StatusSucceeded]) != q.recorded.Load() || counts[jobs.StatusFailed] != 0 {
			t.Errorf("statuses %v; want exactly the %d committed outcomes succeeded, none failed", counts, q.recorded.Load())
		}
		// What was not committed is asked again by the next run.
		if _, err := st.Recover(context.Background(), jobID); err != nil {
			t.Fatal(err)
		}
		r2 := newTestRunner(st, jobID, fake, Options{Concurrency: 16, MaxAttempts: 3})
		if err := r2.Run(context.Background()); err != nil {
			t.Fatalf("second Run: %v", err)
		}
		if got := countStatus(records(t, st, jobID)); got[jobs.StatusSucceeded] != n {
			t.Errorf("after a second run: %v, want all %d succeeded", got, n)
		}
	})
	t.Run("WhileCallsHang", func(t *testing.T) {
		// The first outcome cannot be recorded while the other calls hang:
		// the run must abandon them and return, not wait for them.
		st := mustOpenStore(t)
		jobID := mustImport(t, st, 20)
		fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
			if c.CustomKey == promptKey(1) {
				return fakeapi.Fault{}
			}
			return fakeapi.Fault{KeepAliveOnly: true}
		}})
		q := &failingQueue{Store: st, failFrom: 1}
		r := newTestRunner(q, jobID, fake, Options{Concurrency: 4, MaxAttempts: 3})
		start := time.Now()
		err := mustReturn(t, runAsync(context.Background(), r), 5*time.Second)
		if !errors.Is(err, errInjected) {
			t.Fatalf("Run = %v, want the store's error", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Run returned after %v, want promptly", d)
		}
	})
}

func TestRunnerNothingToDo(t *testing.T) {
	st := mustOpenStore(t)
	jobID := mustImport(t, st, 3)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	if err := newTestRunner(st, jobID, fake, Options{Concurrency: 2}).Run(context.Background()); err != nil {
		t.Fatalf("first Run: %v", err)
	}
	fake.Reset()
	r := newTestRunner(st, jobID, fake, Options{Concurrency: 2})
	if err := mustReturn(t, runAsync(context.Background(), r), 5*time.Second); err != nil {
		t.Fatalf("Run of a finished job = %v, want nil", err)
	}
	if calls := fake.Stats().Calls; calls != 0 {
		t.Errorf("a finished job made %d calls", calls)
	}
}

// BenchmarkRunner measures a run's throughput against the fake with no
// latency: HTTP, claims and group commits, at concurrency 64.
func BenchmarkRunner(b *testing.B) {
	st := mustOpenStore(b)
	job, err := st.Import(context.Background(), jobs.Job{Name: "bench", Source: "bench.jsonl", Fingerprint: "fp"},
		&sliceSource{reqs: chatRequests(b.N)})
	if err != nil {
		b.Fatal(err)
	}
	fake := fakeapi.Start(b, fakeapi.Config{Key: testKey})
	r := newTestRunner(st, job.ID, fake, Options{Concurrency: 64, MaxAttempts: 3})
	b.ReportAllocs()
	b.ResetTimer()
	if err := r.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	commits, outcomes := r.Stats()
	if outcomes != b.N {
		b.Fatalf("%d outcomes, want %d", outcomes, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(float64(outcomes)/float64(max(commits, 1)), "outcomes/commit")
}

// claimCounter is the real store, counting the claims made and the
// requests they took.
type claimCounter struct {
	jobs.Store
	claims, claimed atomic.Int64
}

func (q *claimCounter) Claim(ctx context.Context, jobID int64, n int, now time.Time) ([]jobs.Request, error) {
	reqs, err := q.Store.Claim(ctx, jobID, n, now)
	q.claims.Add(1)
	q.claimed.Add(int64(len(reqs)))
	return reqs, err
}

// The runner claims the next batch while calls run, so claims stay large
// (a claim is a write transaction on the one writer connection), while the
// calls in flight stay within the concurrency.
func TestRunnerClaimsAhead(t *testing.T) {
	const n, concurrency = 2000, 16
	st := mustOpenStore(t)
	jobID := mustImport(t, st, n)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: time.Millisecond})
	q := &claimCounter{Store: st}
	r := newTestRunner(q, jobID, fake, Options{Concurrency: concurrency, MaxAttempts: 1})
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	fs := fake.Stats()
	if fs.Served != n || fs.MaxInFlight > concurrency {
		t.Errorf("served %d with %d in flight at most; want %d with at most %d", fs.Served, fs.MaxInFlight, n, concurrency)
	}
	claims, claimed := q.claims.Load(), q.claimed.Load()
	t.Logf("%d claims took %d requests (%.1f each)", claims, claimed, float64(claimed)/float64(claims))
	if claimed != n {
		t.Errorf("claims took %d requests, want %d (each once)", claimed, n)
	}
	// Claiming only what commits free would take about concurrency or
	// fewer requests a claim.
	if claims*2*concurrency > n {
		t.Errorf("%d claims for %d requests; want at most %d (claims of twice the concurrency on average)", claims, n, n/(2*concurrency))
	}
}

// heldCounter is the real store, keeping the most requests claimed and
// not yet recorded at once, from settle after its first claim on.
type heldCounter struct {
	jobs.Store
	settle     time.Duration
	first      atomic.Int64 // unix nanoseconds of the first claim
	held, most atomic.Int64
	// slowest is the longest claim once settled, in nanoseconds: the
	// runner's mark follows how long claims take.
	slowest atomic.Int64
}

func (q *heldCounter) Claim(ctx context.Context, jobID int64, n int, now time.Time) ([]jobs.Request, error) {
	start := time.Now()
	reqs, err := q.Store.Claim(ctx, jobID, n, now)
	took := int64(time.Since(start))
	q.first.CompareAndSwap(0, time.Now().UnixNano())
	h := q.held.Add(int64(len(reqs)))
	if time.Since(time.Unix(0, q.first.Load())) < q.settle {
		return reqs, err
	}
	raise(&q.most, h)
	raise(&q.slowest, took)
	return reqs, err
}

// raise sets v to x if x is larger.
func raise(v *atomic.Int64, x int64) {
	for m := v.Load(); x > m && !v.CompareAndSwap(m, x); m = v.Load() {
	}
}

func (q *heldCounter) Record(ctx context.Context, outcomes []jobs.Outcome) error {
	err := q.Store.Record(ctx, outcomes)
	q.held.Add(-int64(len(outcomes)))
	return err
}

// A pool of slow calls sends little while a claim is under way, so once
// the runner knows the pool's rate it claims again only when few requests
// are left ready: it does not keep a batch or more claimed (shown as
// running) ahead of the calls.
func TestRunnerClaimsLittleAheadOfSlowCalls(t *testing.T) {
	const n, concurrency = 400, 8
	st := mustOpenStore(t)
	jobID := mustImport(t, st, n)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 40 * time.Millisecond})
	q := &heldCounter{Store: st, settle: 4 * rateSpan}
	r := newTestRunner(q, jobID, fake, Options{Concurrency: concurrency, MaxAttempts: 1})
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// A batch is 4 pools (32); the pool sends at most 200 requests a
	// second, so the mark, what it sends in four times a claim's time,
	// stays under half a batch unless a claim takes 20 ms: the pool, the
	// mark, a batch, and a pool of outcomes waiting for their commit. On a
	// loaded machine, where claims wait longer for the writer's commit,
	// the mark may grow with them, up to a batch; a mark of a batch
	// whatever the claims take would hold up to 8 + 63 + 8 here.
	const batch, rate = 4 * concurrency, concurrency / 0.040
	slowest := time.Duration(q.slowest.Load())
	mark := min(batch, max(batch/2, int(math.Ceil(4*rate*slowest.Seconds()))))
	most, limit := q.most.Load(), int64(concurrency+mark+batch+concurrency)
	t.Logf("at most %d requests claimed and not recorded once the rate was known; the slowest claim %v", most, slowest)
	if most == 0 || most > limit {
		t.Errorf("%d requests claimed and not recorded at once; want 1 to %d (claims up to %v)", most, limit, slowest)
	}
}
