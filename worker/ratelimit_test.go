package worker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
)

// These tests scale a provider's per-minute limit down to a limit per
// second, so that they take seconds: 100 requests a second, 10 at once.
var scaledLimit = fakeapi.Limit{Requests: 100, Window: time.Second, Burst: 10}

// limitRun is what a run against a rate-limited fake did.
type limitRun struct {
	calls, limited int64
	elapsed        time.Duration
}

func (l limitRun) share() float64 { return float64(l.limited) / float64(max(1, l.calls)) }

// runLimited works n requests against a fake enforcing lim and checks that
// every one succeeded.
func runLimited(t *testing.T, n int, lim fakeapi.Limit, opts Options) limitRun {
	t.Helper()
	st := mustOpenStore(t)
	jobID := mustImport(t, st, n)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: fakeapi.NewLimiter(lim).Script(nil)})
	r := newTestRunner(st, jobID, fake, opts)
	start := time.Now()
	if err := mustReturn(t, runAsync(context.Background(), r), time.Minute); err != nil {
		t.Fatalf("Run: %v", err)
	}
	res := limitRun{elapsed: time.Since(start)}
	if got := countStatus(records(t, st, jobID)); got[jobs.StatusSucceeded] != n {
		t.Fatalf("statuses %v, want all %d succeeded", got, n)
	}
	fs := fake.Stats()
	res.calls, res.limited = fs.Calls, fs.Status[429]
	t.Logf("%d requests, %d calls, %d answered 429 (%.1f %%), in %v: %.0f requests/s",
		n, res.calls, res.limited, 100*res.share(), res.elapsed.Round(time.Millisecond), float64(n)/res.elapsed.Seconds())
	return res
}

func TestRunnerRPMHoldsLimit(t *testing.T) {
	const n = 300
	// --rpm at the provider's limit (100/s is 6,000 a minute).
	res := runLimited(t, n, scaledLimit, Options{Concurrency: 16, MaxAttempts: 5, RPM: 6000})
	if res.share() > 0.01 {
		t.Errorf("%.1f %% of the calls were answered 429, want at most 1 %%", 100*res.share())
	}
	// The limit holds: n requests at 100 a second take about 3 s (less the
	// provider's burst of 10, which --rpm does not use).
	if min := 2500 * time.Millisecond; res.elapsed < min {
		t.Errorf("%d requests took %v, want at least %v at 100/s", n, res.elapsed, min)
	}
}

func TestRunnerAdaptiveWithoutRPM(t *testing.T) {
	// The first 32 calls go at once against a burst of 10: 22 of the 420
	// or so calls are answered 429 before anything can be learned.
	tests := []struct {
		name  string
		lim   fakeapi.Limit
		share float64
	}{
		// Only 429s with Retry-After to learn from.
		{"RetryAfter", scaledLimit, 0.2},
		// x-ratelimit-* headers on every answer let dispatch slow down
		// before the limit is hit.
		{"Headers", fakeapi.Limit{Requests: 100, Window: time.Second, Burst: 10, Headers: true}, 0.1},
		// Neither: only the 429s themselves.
		{"Bare", fakeapi.Limit{Requests: 100, Window: time.Second, Burst: 10, NoRetryAfter: true}, 0.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 400
			res := runLimited(t, n, tt.lim, Options{Concurrency: 32, MaxAttempts: 20})
			if res.share() >= tt.share {
				t.Errorf("%.1f %% of the calls were answered 429, want less than %.0f %% (no retry storm)",
					100*res.share(), 100*tt.share)
			}
		})
	}
}

// timedCalls records when the fake decided each call.
type timedCalls struct {
	mu    sync.Mutex
	times []time.Time
}

func (c *timedCalls) add() time.Time {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.times = append(c.times, now)
	return now
}

func (c *timedCalls) between(from, to time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.times {
		if t.After(from) && t.Before(to) {
			n++
		}
	}
	return n
}

// pauseSeen polls r's state while it runs, and returns when it first saw
// dispatch paused for more than 300ms, and until when. It stops the run
// 300ms after that pause, or after 10s: what the requests become after
// the pause is for other tests.
func pauseSeen(r *Runner, done <-chan error) (seen, until time.Time, err error) {
	stop := time.Now().Add(10 * time.Second)
	for {
		select {
		case err = <-done:
			if errors.Is(err, jobs.ErrInterrupted) {
				err = nil
			}
			return seen, until, err
		case <-time.After(2 * time.Millisecond):
		}
		now := time.Now()
		if p := r.State().PausedUntil; seen.IsZero() && p.After(now.Add(300*time.Millisecond)) {
			seen, until, stop = now, p, p.Add(300*time.Millisecond)
		}
		if now.After(stop) {
			r.Stop()
		}
	}
}

func TestRunnerPausesDispatch(t *testing.T) {
	tests := []struct {
		name  string
		fault fakeapi.Fault
		// every says which calls get the fault: one in every, from call 10
		// to call 10+faults; every 2 is half of them, sustained throttles
		// (and not an outage: successes come between them).
		every, faults int64
	}{
		{"RetryAfter", fakeapi.Fault{Status: 429, Header: map[string]string{"retry-after-ms": "600"}}, 2, 40},
		{"RetryAfter503", fakeapi.Fault{Status: 503, Header: map[string]string{"Retry-After": "1"}}, 2, 40},
		{"RemainingRequestsZero", fakeapi.Fault{Header: map[string]string{
			"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "600ms"}}, 1, 1},
		{"RemainingTokensZero", fakeapi.Fault{Header: map[string]string{
			"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "0.6"}}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 60
			st := mustOpenStore(t)
			jobID := mustImport(t, st, n)
			var calls timedCalls
			fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
				calls.add()
				if c.N >= 10 && c.N < 10+tt.faults && (c.N-10)%tt.every == 0 {
					return tt.fault
				}
				return fakeapi.Fault{}
			}})
			r := newTestRunner(st, jobID, fake, Options{Concurrency: 4, MaxAttempts: 3})
			seen, until, err := pauseSeen(r, runAsync(context.Background(), r))
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if seen.IsZero() {
				t.Fatal("dispatch never paused")
			}
			// Calls already on their way when the pause began may land just
			// after it (on a busy machine, a while after); none may start
			// during the pause.
			if got := calls.between(seen.Add(150*time.Millisecond), until.Add(-50*time.Millisecond)); got != 0 {
				t.Errorf("%d calls during the pause seen at %s until %s", got,
					seen.Format("15:04:05.000"), until.Format("15:04:05.000"))
			}
			if got := calls.between(until, time.Now()); got == 0 {
				t.Error("no call after the pause: the run should have gone on")
			}
		})
	}
}

// TestRunnerScatteredRetryAfter: a 429 among successes delays its own
// request, by its Retry-After at least, and no other.
func TestRunnerScatteredRetryAfter(t *testing.T) {
	const n = 40
	st := mustOpenStore(t)
	jobID := mustImport(t, st, n)
	var calls timedCalls
	var mu sync.Mutex
	var signal time.Time // when the fake answered call 10 with a 429
	var retried time.Time
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 50 * time.Millisecond, Script: func(c fakeapi.Call) fakeapi.Fault {
		now := calls.add()
		mu.Lock()
		defer mu.Unlock()
		switch {
		case c.N == 10:
			signal = now
			return fakeapi.Fault{Status: 429, Header: map[string]string{"retry-after-ms": "1500"}}
		case c.Attempt == 2:
			retried = now
		}
		return fakeapi.Fault{}
	}})
	r := newTestRunner(st, jobID, fake, Options{Concurrency: 4, MaxAttempts: 3})
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	t0, t1 := signal, retried
	mu.Unlock()
	if got := calls.between(t0.Add(100*time.Millisecond), t0.Add(400*time.Millisecond)); got == 0 {
		t.Error("no call in the 300ms after a single 429: it paused the run")
	}
	if d := t1.Sub(t0); d < 1500*time.Millisecond {
		t.Errorf("the throttled request was sent again %v after its 429, want its Retry-After 1.5s at least", d)
	}
}

func TestRunnerAdaptiveConcurrency(t *testing.T) {
	const n, concurrency = 120, 16
	st := mustOpenStore(t)
	jobID := mustImport(t, st, n)
	// Two in three of the first 72 calls are answered 503 without
	// Retry-After (successes between them: not an outage): only the
	// concurrency can slow the run down.
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 20 * time.Millisecond,
		Script: func(c fakeapi.Call) fakeapi.Fault {
			if c.N <= 72 && c.N%3 != 0 {
				return fakeapi.Fault{Status: 503}
			}
			return fakeapi.Fault{}
		}})
	r := newTestRunner(st, jobID, fake, Options{Concurrency: concurrency, MaxAttempts: 10})
	done := runAsync(context.Background(), r)
	lowest := concurrency
	var err error
	// The 503s come whatever the rate, so the learned rate falls as long
	// as they do, and takes seconds to grow back: stop the run half a
	// second after the concurrency reached its least (or after 10s).
	stop := time.Now().Add(10 * time.Second)
poll:
	for {
		select {
		case err = <-done:
			break poll
		case <-time.After(2 * time.Millisecond):
			lowest = min(lowest, r.State().Concurrency)
		}
		if now := time.Now(); lowest <= concurrency/4 && stop.After(now.Add(500*time.Millisecond)) {
			stop = now.Add(500 * time.Millisecond)
		}
		if time.Now().After(stop) {
			r.Stop()
		}
	}
	if err != nil && !errors.Is(err, jobs.ErrInterrupted) {
		t.Fatalf("Run: %v", err)
	}
	// The least is a quarter of the concurrency (MinConcurrency's default).
	if lowest != concurrency/4 {
		t.Errorf("effective concurrency went down to %d of %d under sustained 503s, want %d",
			lowest, concurrency, concurrency/4)
	}
	if got := r.State(); got.MaxConcurrency != concurrency || got.Concurrency < 1 || got.Concurrency > concurrency {
		t.Errorf("State = %+v", got)
	}
	t.Logf("effective concurrency went down to %d; %d at the end", lowest, r.State().Concurrency)
}

func TestRunnerTPM(t *testing.T) {
	const n = 20
	st := mustOpenStore(t)
	jobID := mustImport(t, st, n)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	// 6,000 tokens a minute: 100 a second. Each request is estimated at
	// about 1,036 tokens (no max_tokens) and uses about 6.
	r := newTestRunner(st, jobID, fake, Options{Concurrency: 4, MaxAttempts: 3, TPM: 6000})
	start := time.Now()
	if err := mustReturn(t, runAsync(context.Background(), r), time.Minute); err != nil {
		t.Fatalf("Run: %v", err)
	}
	elapsed := time.Since(start)
	used := fake.Stats().Usage.TotalTokens
	if got := countStatus(records(t, st, jobID)); got[jobs.StatusSucceeded] != n {
		t.Fatalf("statuses %v, want all %d succeeded", got, n)
	}
	// The limit holds for the tokens really used...
	if min := time.Duration(float64(used-10) / 100 * float64(time.Second) * 0.8); elapsed < min {
		t.Errorf("%d tokens used in %v, want at least %v at 100 tokens/s", used, elapsed, min)
	}
	// ...and estimates are reconciled: charged at the estimate, 20
	// requests would take more than 3 minutes.
	if max := 30 * time.Second; elapsed > max {
		t.Errorf("%d requests took %v; with estimates reconciled they take about %v", n, elapsed,
			time.Duration(float64(used)/100*float64(time.Second)))
	}
	t.Logf("%d requests using %d tokens in %v", n, used, elapsed.Round(time.Millisecond))
}

func TestRunnerSavesRunState(t *testing.T) {
	const n = 40
	st := mustOpenStore(t)
	jobID := mustImport(t, st, n)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 20 * time.Millisecond})
	// 1,200 a minute: 20 a second, so the run lasts about 2 s.
	r := newTestRunner(st, jobID, fake, Options{Concurrency: 4, MaxAttempts: 3, RPM: 1200, TPM: 500_000,
		StateEvery: 20 * time.Millisecond})
	done := runAsync(context.Background(), r)
	var saved jobs.RunState
	waitFor(t, 5*time.Second, "a saved run state", func() bool {
		s, err := st.RunState(context.Background(), jobID)
		saved = s
		return err == nil
	})
	if saved.MaxConcurrency != 4 || saved.Concurrency != 4 || saved.RPM != 1200 || saved.TPM != 500_000 ||
		!saved.Live(time.Now()) {
		t.Errorf("saved %+v, want concurrency 4 of 4, rpm 1200, tpm 500000, fresh", saved)
	}
	first := saved.UpdatedAt
	waitFor(t, 5*time.Second, "the state saved again", func() bool {
		s, err := st.RunState(context.Background(), jobID)
		return err == nil && s.UpdatedAt.After(first)
	})
	if err := mustReturn(t, done, time.Minute); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := st.RunState(context.Background(), jobID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("after the run: RunState = %v, want jobs.ErrNotFound (a run that ended paces nothing)", err)
	}
}
