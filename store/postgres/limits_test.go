package postgres

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/pgtest"
	"github.com/llmbatch/llmbatch/jobs"
)

// openLimitHosts opens one fresh database as n hosts would (a store, and so a
// pool, each), imports a job of one request through the first and returns
// the stores and the job's id.
func openLimitHosts(t *testing.T, n int) ([]*Store, int64) {
	t.Helper()
	dsn := pgtest.DSN(t)
	hosts := make([]*Store, n)
	for i := range hosts {
		s, err := Open(t.Context(), dsn)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		hosts[i] = s
	}
	job := mustImportLines(t, hosts[0], "shared", chatLines(1, "m", nil))
	return hosts, job.ID
}

func mustJoin(t *testing.T, s *Store, jobID int64, run string, spent jobs.Amount) jobs.LimitsView {
	t.Helper()
	v, err := s.JoinLimits(t.Context(), jobID, run, spent, time.Minute)
	if err != nil {
		t.Fatalf("JoinLimits(%s): %v", run, err)
	}
	return v
}

// TestSharedLimitsNeedAJoin: a job whose limits no run joined, and a job
// that does not exist, have none.
func TestSharedLimitsNeedAJoin(t *testing.T) {
	hosts, jobID := openLimitHosts(t, 1)
	s, ctx := hosts[0], t.Context()
	_, err := s.ReadLimits(ctx, jobID)
	checkNotFound(t, "ReadLimits", err)
	_, err = s.TakeRate(ctx, jobID, jobs.BucketTake{PerMinute: 60, Burst: 1, Want: 1, Least: 1}, jobs.BucketTake{})
	checkNotFound(t, "TakeRate", err)
	_, err = s.Pause(ctx, jobID, time.Second)
	checkNotFound(t, "Pause", err)
	_, _, err = s.Reserve(ctx, jobID, "a", jobs.Amount{Tokens: 1}, jobs.Amount{Tokens: 10}, time.Minute)
	checkNotFound(t, "Reserve", err)
	_, err = s.Settle(ctx, jobID, "a", jobs.Amount{}, jobs.Amount{Tokens: 1}, time.Minute)
	checkNotFound(t, "Settle", err)
	checkNotFound(t, "LeaveLimits", s.LeaveLimits(ctx, jobID, "a"))
	_, err = s.JoinLimits(ctx, jobID+1, "a", jobs.Amount{}, time.Minute)
	checkNotFound(t, "JoinLimits of no job", err)
}

func checkNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("%s: %v, want jobs.ErrNotFound", what, err)
	}
}

// TestSharedRateAcrossHosts: three hosts, four takers each, take one
// request at a time from a job's bucket of 6,000 a minute (100 a second)
// for a second and a half. Together they get no more than the burst and
// the rate allow, and nearly all of it; a take of the token bucket
// beside leaves the request bucket's grants alone.
func TestSharedRateAcrossHosts(t *testing.T) {
	hosts, jobID := openLimitHosts(t, 3)
	for i, s := range hosts {
		mustJoin(t, s, jobID, fmt.Sprintf("run-%d", i), jobs.Amount{})
	}
	reqs := jobs.BucketTake{PerMinute: 6000, Burst: 5, Want: 1, Least: 1}
	toks := jobs.BucketTake{PerMinute: 60000, Burst: 50, Want: 10, Least: 10}
	var granted, tokens atomic.Int64
	var failed atomic.Value
	start := time.Now()
	deadline := start.Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	for _, s := range hosts {
		for range 4 {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					g, err := s.TakeRate(t.Context(), jobID, reqs, toks)
					if err != nil {
						failed.Store(err)
						return
					}
					granted.Add(int64(g.Requests))
					tokens.Add(int64(g.Tokens))
					if g.Requests == 0 && g.RequestsLeft >= reqs.Least {
						failed.Store(fmt.Errorf("nothing granted with %v left", g.RequestsLeft))
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start).Seconds()
	most := reqs.Burst + elapsed*reqs.PerMinute/60
	got := float64(granted.Load())
	t.Logf("granted %v requests in %.2fs (at most %.0f), %d tokens", got, elapsed, most, tokens.Load())
	if got > most+1 {
		t.Errorf("granted %v requests in %.2fs, want at most %.0f (burst %v, %v a minute)", got, elapsed, most, reqs.Burst, reqs.PerMinute)
	}
	if got < 0.9*most {
		t.Errorf("granted %v requests in %.2fs, want at least 90 %% of %.0f", got, elapsed, most)
	}
	if most := toks.Burst + elapsed*toks.PerMinute/60; float64(tokens.Load()) > most+toks.Want {
		t.Errorf("granted %d tokens, want at most %.0f", tokens.Load(), most)
	}
}

// TestSharedRateGrantsPartly: a take gets what the bucket holds when that
// is less than it wants but at least the least it takes, and nothing
// below that; a new bucket is full.
func TestSharedRateGrantsPartly(t *testing.T) {
	hosts, jobID := openLimitHosts(t, 1)
	s, ctx := hosts[0], t.Context()
	mustJoin(t, s, jobID, "a", jobs.Amount{})
	// A rate of one a minute: nothing refills while the test runs.
	slow := jobs.BucketTake{PerMinute: 1, Burst: 3, Want: 2, Least: 1}
	for _, want := range []struct{ granted, left float64 }{{2, 3}, {1, 1}, {0, 0}} {
		g, err := s.TakeRate(ctx, jobID, slow, jobs.BucketTake{})
		if err != nil {
			t.Fatalf("TakeRate: %v", err)
		}
		// What refills while the test runs is a few thousandths.
		near := func(got, want float64) bool { return got >= want && got <= want+0.01 }
		if !near(g.Requests, want.granted) || !near(g.RequestsLeft, want.left) || g.Tokens != 0 {
			t.Errorf("granted %v of %v (tokens %v), want %v of %v", g.Requests, g.RequestsLeft, g.Tokens, want.granted, want.left)
		}
	}
}

// TestSharedPause: a pause one host sets is seen by another, and a
// shorter pause does not shorten it.
func TestSharedPause(t *testing.T) {
	hosts, jobID := openLimitHosts(t, 2)
	a, b := hosts[0], hosts[1]
	mustJoin(t, a, jobID, "a", jobs.Amount{})
	if v := mustJoin(t, b, jobID, "b", jobs.Amount{}); v.PausedFor != 0 {
		t.Fatalf("a new job is paused for %v", v.PausedFor)
	}
	if d, err := a.Pause(t.Context(), jobID, 2*time.Second); err != nil || d < 1900*time.Millisecond || d > 2*time.Second {
		t.Fatalf("Pause(2s) = %v, %v; want 2s", d, err)
	}
	if d, err := b.Pause(t.Context(), jobID, time.Second); err != nil || d < 1900*time.Millisecond {
		t.Fatalf("Pause(1s) after Pause(2s) = %v, %v; want the 2s pause in force", d, err)
	}
	v, err := b.ReadLimits(t.Context(), jobID)
	if err != nil || v.PausedFor < 1800*time.Millisecond || v.PausedFor > 2*time.Second {
		t.Errorf("the other host reads a pause of %v (%v), want about 2s", v.PausedFor, err)
	}
	g, err := b.TakeRate(t.Context(), jobID, jobs.BucketTake{}, jobs.BucketTake{})
	if err != nil || g.PausedFor < 1800*time.Millisecond {
		t.Errorf("TakeRate reports a pause of %v (%v), want about 2s", g.PausedFor, err)
	}
}

// TestSharedBudgetAcrossHosts: three hosts, four reservers each, reserve
// 100 tokens at a time against a limit of 1,900 of which 200 are spent:
// exactly 17 reservations succeed, however the statements interleave.
// Settling them spends what they used and frees the rest.
func TestSharedBudgetAcrossHosts(t *testing.T) {
	hosts, jobID := openLimitHosts(t, 3)
	for i, s := range hosts {
		// The runs saw different spends: the largest counts.
		mustJoin(t, s, jobID, fmt.Sprintf("run-%d", i), jobs.Amount{Tokens: int64(100 * i), Cost: float64(i)})
	}
	amount, limit := jobs.Amount{Tokens: 100, Cost: 0.5}, jobs.Amount{Tokens: 1900}
	var ok atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for i, s := range hosts {
		for range 4 {
			wg.Go(func() {
				for range 10 {
					fit, v, err := s.Reserve(t.Context(), jobID, fmt.Sprintf("run-%d", i), amount, limit, time.Minute)
					if err != nil {
						failed.Store(err)
						return
					}
					if fit {
						ok.Add(1)
					}
					if v.Spent.Tokens+v.Held.Tokens > limit.Tokens {
						failed.Store(fmt.Errorf("spent %d and held %d pass the limit %d", v.Spent.Tokens, v.Held.Tokens, limit.Tokens))
					}
				}
			})
		}
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	if got := ok.Load(); got != 17 {
		t.Fatalf("%d reservations of 100 fitted 1,700 tokens left, want 17", got)
	}
	v, err := hosts[0].ReadLimits(t.Context(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (jobs.LimitsView{Spent: jobs.Amount{Tokens: 200, Cost: 2}, Held: jobs.Amount{Tokens: 1700, Cost: 8.5}}); v != want {
		t.Fatalf("limits %+v, want %+v", v, want)
	}
	// run-0 settles what it holds: each request used 10 tokens.
	held := holdOf(t, hosts[0], jobID, "run-0")
	n := held.Tokens / amount.Tokens
	v, err = hosts[0].Settle(t.Context(), jobID, "run-0", held, jobs.Amount{Tokens: 10 * n, Cost: 0.1 * float64(n)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if v.Spent.Tokens != 200+10*n || v.Held.Tokens != 1700-held.Tokens {
		t.Errorf("after settling %d: spent %d held %d, want %d and %d", n, v.Spent.Tokens, v.Held.Tokens, 200+10*n, 1700-held.Tokens)
	}
	// Leaving releases a run's holds; a later join never lowers Spent.
	left := holdOf(t, hosts[1], jobID, "run-1")
	if err := hosts[1].LeaveLimits(t.Context(), jobID, "run-1"); err != nil {
		t.Fatal(err)
	}
	v = mustJoin(t, hosts[2], jobID, "run-3", jobs.Amount{Tokens: 1})
	if want := 1700 - held.Tokens - left.Tokens; v.Held.Tokens != want || v.Spent.Tokens != 200+10*n {
		t.Errorf("after run-1 left: held %d spent %d, want %d and %d", v.Held.Tokens, v.Spent.Tokens, want, 200+10*n)
	}
}

// holdOf reads what run holds.
func holdOf(t *testing.T, s *Store, jobID int64, run string) jobs.Amount {
	t.Helper()
	var a jobs.Amount
	err := s.pool.QueryRow(t.Context(), `SELECT coalesce((holds->$2::text->>'t')::bigint, 0),
		coalesce((holds->$2::text->>'c')::float8, 0) FROM job_limits WHERE job_id = $1`, jobID, run).Scan(&a.Tokens, &a.Cost)
	if err != nil {
		t.Fatalf("read hold of %s: %v", run, err)
	}
	return a
}

// TestSharedHoldLapses: what a run holds lapses when it does not renew it
// (its host was lost), so that another run may reserve it; the lapsed run
// settling late releases nothing more but counts what it spent.
func TestSharedHoldLapses(t *testing.T) {
	hosts, jobID := openLimitHosts(t, 2)
	a, b, ctx := hosts[0], hosts[1], t.Context()
	mustJoin(t, a, jobID, "a", jobs.Amount{})
	mustJoin(t, b, jobID, "b", jobs.Amount{})
	limit := jobs.Amount{Tokens: 100}
	if fit, _, err := a.Reserve(ctx, jobID, "a", jobs.Amount{Tokens: 80}, limit, 100*time.Millisecond); !fit || err != nil {
		t.Fatalf("a reserves 80 of 100: %v, %v", fit, err)
	}
	if fit, v, err := b.Reserve(ctx, jobID, "b", jobs.Amount{Tokens: 80}, limit, time.Minute); fit || err != nil || v.Held.Tokens != 80 {
		t.Fatalf("b reserves 80 beside a's 80: %v, %+v, %v; want no fit, 80 held", fit, v, err)
	}
	time.Sleep(150 * time.Millisecond)
	if fit, v, err := b.Reserve(ctx, jobID, "b", jobs.Amount{Tokens: 80}, limit, time.Minute); !fit || err != nil || v.Held.Tokens != 80 {
		t.Fatalf("b reserves 80 once a's hold lapsed: %v, %+v, %v; want a fit, 80 held", fit, v, err)
	}
	v, err := a.Settle(ctx, jobID, "a", jobs.Amount{Tokens: 80}, jobs.Amount{Tokens: 30}, time.Minute)
	if err != nil || v.Held.Tokens != 80 || v.Spent.Tokens != 30 {
		t.Fatalf("a settles late: %+v, %v; want b's 80 held, 30 spent", v, err)
	}
	if got := holdOf(t, a, jobID, "a"); got.Tokens != 0 || got.Cost != 0 {
		t.Errorf("a holds %+v after settling a lapsed hold, want nothing", got)
	}
}
