package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/pgtest"
	"github.com/llmbatch/llmbatch/jobs"
	"golang.org/x/sync/errgroup"
)

// success is a plain success of r with a result of its own.
func success(r jobs.Request) jobs.Outcome {
	return jobs.Outcome{Request: r, Next: jobs.StatusSucceeded, CountAttempt: true,
		Attempt: &jobs.Attempt{RequestID: r.ID, Number: r.Attempts + 1, StartedAt: t0, Duration: time.Second, StatusCode: 200},
		Result: &jobs.Result{RequestID: r.ID, StatusCode: 200, Raw: []byte(`{"id":"` + r.CustomID + `"}`),
			Content: r.CustomID, Usage: jobs.Usage{Known: true, TotalTokens: 3}, Latency: time.Second, CreatedAt: t0}}
}

// openTwice opens one fresh database as two hosts would: two stores, each
// with its own pool.
func openTwice(t *testing.T) (a, b *Store) {
	t.Helper()
	dsn := pgtest.DSN(t)
	for _, s := range []**Store{&a, &b} {
		var err error
		if *s, err = Open(t.Context(), dsn); err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { (*s).Close() })
	}
	return a, b
}

// TestCachePassesBesideClaimsOfAnotherHost: two hosts run a cache pass each
// over the same job while the second also claims from it. Every request
// ends either claimed (running, no result) or answered once from the
// cache (succeeded, a cached result), never both, and the passes' counts
// add up to what they answered.
func TestCachePassesBesideClaimsOfAnotherHost(t *testing.T) {
	a, b := openTwice(t)
	const n = 3000
	key := func(line int) string { return fmt.Sprintf("key-%d", (line-1)%50) } // the key of src line (line-1)%50+1
	src := mustImportLines(t, a, "src", chatLines(50, "m", key))
	var outs []jobs.Outcome
	for _, r := range mustClaimAll(t, a, src.ID) {
		outs = append(outs, success(r))
	}
	if err := a.Record(t.Context(), outs); err != nil {
		t.Fatalf("Record: %v", err)
	}
	job := mustImportLines(t, a, "dst", chatLines(n, "m", key))
	var answered [2]int
	claimed := 0
	g, ctx := errgroup.WithContext(t.Context())
	for i, s := range []*Store{a, b} {
		g.Go(func() error { return runPass(ctx, s, job.ID, &answered[i]) })
	}
	g.Go(func() error {
		for {
			reqs, err := b.Claim(ctx, job.ID, 25, t0)
			if err != nil || len(reqs) == 0 {
				return err
			}
			claimed += len(reqs)
		}
	})
	if err := g.Wait(); err != nil {
		t.Fatalf("passes and claims: %v", err)
	}
	t.Logf("answered %d and %d, claimed %d", answered[0], answered[1], claimed)
	checkAnsweredOrClaimed(t, a, job.ID, answered[0]+answered[1], claimed)
}

// mustClaimAll claims every pending request of the job.
func mustClaimAll(t *testing.T, s *Store, jobID int64) []jobs.Request {
	t.Helper()
	reqs, err := s.Claim(t.Context(), jobID, 1<<20, t0)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return reqs
}

// runPass runs a cache pass to its end in small steps, so that claims
// come between them, and stores how many it answered.
func runPass(ctx context.Context, s *Store, jobID int64, answered *int) error {
	p := s.NewCachePass(jobID)
	for {
		more, err := p.Next(ctx, 40)
		if err != nil || !more {
			*answered = p.Answered()
			return err
		}
	}
}

// checkAnsweredOrClaimed checks that each request of the job is either
// running without a result or succeeded with a cached one, as many of
// each as were claimed and answered, and that the claims left none.
func checkAnsweredOrClaimed(t *testing.T, s *Store, jobID int64, answered, claimed int) {
	t.Helper()
	got := map[jobs.Status]int{}
	err := s.Records(t.Context(), jobID, func(r jobs.Record) error {
		st := r.Request.Status
		got[st]++
		if ok := (st == jobs.StatusRunning && r.Result == nil) ||
			(st == jobs.StatusSucceeded && r.Result != nil && r.Result.Content == fmt.Sprintf("req-%d", (r.Request.Line-1)%50+1)); !ok {
			return fmt.Errorf("line %d: %s with result %+v; want running without one or succeeded with a copy",
				r.Request.Line, st, r.Result)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got[jobs.StatusSucceeded] != answered || got[jobs.StatusRunning] != claimed || len(got) > 2 {
		t.Errorf("statuses %v; want %d succeeded (answered) and %d running (claimed), no other", got, answered, claimed)
	}
	if st, err := s.Stats(t.Context(), jobID); err != nil || st.Cached != answered {
		t.Errorf("Stats.Cached = %d, %v; want %d", st.Cached, err, answered)
	}
}
