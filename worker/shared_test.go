package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/internal/pgtest"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store"
)

// These tests run three runners on one job of a PostgreSQL database, each
// through a store of its own, as three hosts would; they skip without a
// test server (see docs/postgres-tests.md).

// openShared opens one fresh PostgreSQL database as n hosts would and
// imports a job of n requests through the first; every store shares
// limits. Each store is locked for a run of its own where the engine lets
// several runs share a job (jobs.Runners).
func openShared(t *testing.T, hosts, n int) ([]jobs.Store, int64) {
	t.Helper()
	dsn := pgtest.DSN(t)
	stores := make([]jobs.Store, hosts)
	for i := range stores {
		st, err := store.Open(context.Background(), dsn)
		if err != nil {
			t.Fatalf("store.Open: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		if _, ok := st.(jobs.SharedLimits); !ok {
			t.Fatalf("the PostgreSQL store %T does not implement jobs.SharedLimits", st)
		}
		stores[i] = st
	}
	jobID := mustImport(t, stores[0], n)
	for i, st := range stores {
		owner := jobs.LockOwner{Token: fmt.Sprintf("run-%d", i), PID: i, Host: fmt.Sprintf("host-%d", i)}
		err := st.Lock(context.Background(), jobID, owner, time.Minute, nil)
		if _, runners := st.(jobs.Runners); err != nil && (runners || !errors.Is(err, jobs.ErrLocked)) {
			t.Fatalf("Lock for run %d: %v", i, err)
		}
	}
	return stores, jobID
}

// runAll runs the runners at once and returns their errors once all have
// returned.
func runAll(t *testing.T, runners []*Runner) []error {
	t.Helper()
	dones := make([]<-chan error, len(runners))
	for i, r := range runners {
		dones[i] = runAsync(context.Background(), r)
	}
	errs := make([]error, len(runners))
	for i, done := range dones {
		errs[i] = mustReturn(t, done, 2*time.Minute)
	}
	return errs
}

// TestSharedRPMAcrossRunners is the "shared --rpm": three runners
// at --rpm 3000 against a provider that answers 429 above 3,000 requests
// a minute, with a burst of a fifth of a second's worth, 10 (a fifth of
// fakeapi.Limit's default). Together they keep to the limit, with at most
// 1 % of their calls answered 429, and use at least 90 % of it. 450 requests at 50 a
// second take about 9 s. The job's time is until its last request was
// answered.
func TestSharedRPMAcrossRunners(t *testing.T) {
	const n, rpm = 450, 3000
	stores, jobID := openShared(t, 3, n)
	limiter := fakeapi.NewLimiter(fakeapi.Limit{Requests: rpm, Burst: 10})
	var mu sync.Mutex
	var last time.Time
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: limiter.Script(func(fakeapi.Call) fakeapi.Fault {
		mu.Lock()
		last = time.Now()
		mu.Unlock()
		return fakeapi.Fault{}
	})})
	runners := make([]*Runner, len(stores))
	var takes atomic.Int64
	for i, st := range stores {
		runners[i] = newTestRunner(st, jobID, fake, Options{Concurrency: 8, MaxAttempts: 5, RPM: rpm,
			Shared: countingTakes{st.(jobs.SharedLimits), &takes}})
	}
	start := time.Now()
	for i, err := range runAll(t, runners) {
		if err != nil {
			t.Fatalf("runner %d: %v", i, err)
		}
	}
	ended := time.Since(start)
	if got := countStatus(records(t, stores[0], jobID)); got[jobs.StatusSucceeded] != n {
		t.Fatalf("statuses %v, want all %d succeeded", got, n)
	}
	for i, r := range runners {
		if _, outcomes := r.Stats(); outcomes < n/10 {
			t.Errorf("runner %d recorded %d outcomes, want each to do a fair part of %d", i, outcomes, n)
		}
	}
	fs := fake.Stats()
	mu.Lock()
	elapsed := last.Sub(start)
	mu.Unlock()
	limit := float64(rpm) / 60 // a second
	rate := float64(fs.Calls) / elapsed.Seconds()
	share := float64(fs.Status[429]) / float64(fs.Calls)
	t.Logf("%d requests, %d calls, %d answered 429 (%.2f %%), the last after %v (the runners ended after %v): %.1f calls/s, %.1f successes/s, limit %.0f/s",
		n, fs.Calls, fs.Status[429], 100*share, elapsed.Round(time.Millisecond), ended.Round(time.Millisecond),
		rate, float64(n)/elapsed.Seconds(), limit)
	// The provider's burst, taken at the start, may come on top of the rate.
	if most := limit + 10/elapsed.Seconds(); rate > most {
		t.Errorf("%.1f calls/s, want at most %.1f (the limit and its burst)", rate, most)
	}
	if share > 0.01 {
		t.Errorf("%.2f %% of the calls were answered 429, want at most 1 %%", 100*share)
	}
	if got := float64(n) / elapsed.Seconds(); got < 0.9*limit {
		t.Errorf("%.1f successes/s, want at least 90 %% of the limit %.0f/s", got, limit)
	}
	// A run takes when the job's bucket should hold what it asks for at
	// least, half a grant (a grant is a tenth of a second's worth): some
	// twenty times a second, whatever the rate, and a few more when another
	// run took it first.
	perRun := float64(takes.Load()) / float64(len(runners)) / elapsed.Seconds()
	t.Logf("%d takes from the job's buckets: %.1f a second a run, %.2f a request", takes.Load(), perRun, float64(takes.Load())/n)
	if perRun > 30 {
		t.Errorf("%.1f takes a second a run, want at most 30", perRun)
	}
}

// TestSharedRunEndsSoonAfterTheLastAnswer: a run that finds nothing to
// claim while another run holds the job's last requests ends soon after
// their answers are recorded, although no outcome of its own wakes it.
func TestSharedRunEndsSoonAfterTheLastAnswer(t *testing.T) {
	const n = 4
	stores, jobID := openShared(t, 2, n)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 1200 * time.Millisecond})
	holder := newTestRunner(stores[1], jobID, fake, Options{Concurrency: n, MaxAttempts: 2, Shared: stores[1].(jobs.SharedLimits)})
	idler := newTestRunner(stores[0], jobID, fake, Options{Concurrency: n, MaxAttempts: 2, Shared: stores[0].(jobs.SharedLimits)})
	var held time.Time
	heldDone := make(chan error, 1)
	go func() {
		err := holder.Run(context.Background())
		held = time.Now()
		heldDone <- err
	}()
	waitFor(t, 10*time.Second, "the first run to send every request", func() bool { return fake.Stats().InFlight == n })
	idleDone := runAsync(context.Background(), idler)
	if err := mustReturn(t, heldDone, time.Minute); err != nil {
		t.Fatalf("the run holding the requests: %v", err)
	}
	if err := mustReturn(t, idleDone, time.Minute); err != nil {
		t.Fatalf("the idle run: %v", err)
	}
	// A run that looked again only every second would end 0.8 s late here.
	if late := time.Since(held); late > 500*time.Millisecond {
		t.Errorf("the idle run ended %v after the other run's last answer, want within 0.5 s", late.Round(time.Millisecond))
	}
	if _, outcomes := idler.Stats(); outcomes != 0 {
		t.Errorf("the idle run recorded %d outcomes, want 0 (the other run held every request)", outcomes)
	}
}

// countingTakes counts the takes of a run from its job's buckets.
type countingTakes struct {
	jobs.SharedLimits
	n *atomic.Int64
}

func (c countingTakes) TakeRate(ctx context.Context, jobID int64, requests, tokens jobs.BucketTake) (jobs.RateGrant, error) {
	c.n.Add(1)
	return c.SharedLimits.TakeRate(ctx, jobID, requests, tokens)
}

// TestSharedBudgetAcrossRunners: three runners with --max-tokens 5000 on
// one job, each request's worst case about 1,030 tokens (the default
// max_tokens of 1,024 and its prompt) and its usage a few tokens. The
// provider serves no more tokens than the budget and one worst case per
// runner (none more at all, as the reservations are checked in one
// statement), the budget is used up to within one worst case, and every
// runner stops with a *BudgetError.
func TestSharedBudgetAcrossRunners(t *testing.T) {
	const n, maxTokens = 1500, 5000
	stores, jobID := openShared(t, 3, n)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 2 * time.Millisecond})
	runners := make([]*Runner, len(stores))
	for i, st := range stores {
		runners[i] = newTestRunner(st, jobID, fake, Options{Concurrency: 4, MaxAttempts: 3,
			Budget: Budget{MaxTokens: maxTokens}, Shared: st.(jobs.SharedLimits)})
	}
	for i, err := range runAll(t, runners) {
		if !errors.Is(err, jobs.ErrBudget) {
			t.Errorf("runner %d: %v, want a *BudgetError", i, err)
		}
	}
	worst := EstimateTokens(chatRequests(n)[n-1].Body)
	served := fake.Stats().Usage.TotalTokens
	stats, err := stores[0].Stats(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("served %d tokens in %d answers against a budget of %d (worst case %d a request); recorded %d",
		served, fake.Stats().Served, maxTokens, worst, stats.Usage.TotalTokens)
	if most := maxTokens + int64(len(runners))*worst; served > most {
		t.Errorf("the provider served %d tokens, want at most %d: the budget and one worst case per runner", served, most)
	}
	if served > maxTokens {
		t.Errorf("the provider served %d tokens, more than the budget %d", served, maxTokens)
	}
	if least := maxTokens - worst; served < least {
		t.Errorf("the provider served %d tokens, want at least %d: the runners stopped with budget left", served, least)
	}
	if stats.Counts[jobs.StatusSucceeded] == n {
		t.Errorf("every request succeeded: the budget never stopped the job")
	}
}

// TestSharedPauseAcrossRunners: a 429 with Retry-After that one runner
// sees pauses the others. Runners B and C send to one provider, steadily
// (--rpm 2400 for the job); runner A, started later, sends to another that
// answers its first call 429 "Retry-After: 1" with its request limit used
// up. B and C then send nothing until the pause ends, though their
// provider never pushed back.
func TestSharedPauseAcrossRunners(t *testing.T) {
	const n, rpm = 120, 2400
	stores, jobID := openShared(t, 3, n)
	var mu sync.Mutex
	var calls []time.Time // B's and C's
	var throttledAt time.Time
	others := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(fakeapi.Call) fakeapi.Fault {
		mu.Lock()
		calls = append(calls, time.Now())
		mu.Unlock()
		return fakeapi.Fault{}
	}})
	var once sync.Once
	throttling := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(fakeapi.Call) fakeapi.Fault {
		var f fakeapi.Fault
		once.Do(func() {
			mu.Lock()
			throttledAt = time.Now()
			mu.Unlock()
			f = fakeapi.Fault{Status: 429, Header: map[string]string{"Retry-After": "1",
				"x-ratelimit-remaining-requests": "0"}}
		})
		return f
	}})
	opts := func(st jobs.Store) Options {
		return Options{Concurrency: 4, MaxAttempts: 5, RPM: rpm, Shared: st.(jobs.SharedLimits)}
	}
	b := newTestRunner(stores[1], jobID, others, opts(stores[1]))
	c := newTestRunner(stores[2], jobID, others, opts(stores[2]))
	doneB, doneC := runAsync(context.Background(), b), runAsync(context.Background(), c)
	time.Sleep(500 * time.Millisecond) // B and C are sending
	a := newTestRunner(stores[0], jobID, throttling, opts(stores[0]))
	errs := []error{mustReturn(t, runAsync(context.Background(), a), time.Minute),
		mustReturn(t, doneB, time.Minute), mustReturn(t, doneC, time.Minute)}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("runner %d: %v", i, err)
		}
	}
	if got := countStatus(records(t, stores[0], jobID)); got[jobs.StatusSucceeded] != n {
		t.Fatalf("statuses %v, want all %d succeeded", got, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if throttledAt.IsZero() {
		t.Fatal("runner A made no call")
	}
	// The longest silence of B and C's provider after the 429.
	var gapFrom, gapTo time.Time
	last := throttledAt
	for _, at := range calls {
		if at.After(throttledAt) {
			if at.Sub(last) > gapTo.Sub(gapFrom) {
				gapFrom, gapTo = last, at
			}
			last = at
		}
	}
	t.Logf("after the 429 at %s, B and C sent nothing for %v from %v after it",
		throttledAt.Format("15:04:05.000"), gapTo.Sub(gapFrom).Round(time.Millisecond), gapFrom.Sub(throttledAt).Round(time.Millisecond))
	// The pause reaches them within their polling period and lasts until a
	// second after the 429.
	if lag := gapFrom.Sub(throttledAt); lag > 300*time.Millisecond {
		t.Errorf("B and C went on sending for %v after the 429, want them paused within 300ms", lag)
	}
	if gap := gapTo.Sub(gapFrom); gap < 700*time.Millisecond {
		t.Errorf("B and C paused for %v at most, want the rest of the second Retry-After asked", gap)
	}
}

// TestSharedTPMAcrossRunners: three runners at --tpm worth 20 requests a
// second (each request's estimate is about 1,035 tokens) send, together,
// no more than that. The provider takes a second to answer, so that no
// answer's usage gives tokens back during the 800 ms counted: by then the
// job's bucket (two grants' worth, four requests, saved up at the start)
// and its rate allow 20 requests, where three runners on their own would
// send more than twice as many.
func TestSharedTPMAcrossRunners(t *testing.T) {
	const n = 300
	stores, jobID := openShared(t, 3, n)
	cost := EstimateTokens(chatRequests(n)[0].Body)
	tpm := int(20 * 60 * cost)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: time.Second})
	runners := make([]*Runner, len(stores))
	dones := make([]<-chan error, len(stores))
	for i, st := range stores {
		runners[i] = newTestRunner(st, jobID, fake, Options{Concurrency: 64, MaxAttempts: 3, TPM: tpm,
			Shared: st.(jobs.SharedLimits)})
		dones[i] = runAsync(context.Background(), runners[i])
	}
	time.Sleep(800 * time.Millisecond)
	calls := fake.Stats().Calls
	for _, r := range runners {
		r.Stop()
	}
	for i, done := range dones {
		if err := mustReturn(t, done, time.Minute); !errors.Is(err, jobs.ErrInterrupted) {
			t.Errorf("runner %d: %v, want jobs.ErrInterrupted", i, err)
		}
	}
	t.Logf("%d calls in the first 800 ms at --tpm %d (%d tokens a request)", calls, tpm, cost)
	if calls > 22 {
		t.Errorf("%d calls in 800 ms, want at most 20 (and a couple for the timing): 20 a second and a burst of 4", calls)
	}
	if calls < 12 {
		t.Errorf("%d calls in 800 ms, want about 20", calls)
	}
}
