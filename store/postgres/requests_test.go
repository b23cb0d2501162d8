package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/pgtest"
	"github.com/llmbatch/llmbatch/jobs"
)

// The tests of this file hold claims and records to their promises across
// hosts: two Stores on one database are two runners with pools of their
// own, as on two machines.

// openHosts opens n stores on one fresh database.
func openHosts(t *testing.T, n int) []*Store {
	t.Helper()
	dsn := pgtest.DSN(t)
	hosts := make([]*Store, n)
	for i := range hosts {
		s, err := Open(context.Background(), dsn)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		hosts[i] = s
	}
	return hosts
}

// TestClaimAcrossHostsNeverTwice: runners on two hosts claiming and
// recording at once hand out every request once.
func TestClaimAcrossHostsNeverTwice(t *testing.T) {
	const total, perHost = 2000, 3
	hosts := openHosts(t, 2)
	job, err := hosts[0].Import(context.Background(), jobs.Job{Name: "shared", Source: "bench.jsonl"},
		&sliceSource{reqs: benchRequests(total)})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for h, s := range hosts {
		for w := range perHost {
			runner := fmt.Sprintf("host %d runner %d", h, w)
			wg.Go(func() {
				for {
					reqs, err := s.Claim(context.Background(), job.ID, 7, t0)
					if err != nil || len(reqs) == 0 {
						if err != nil {
							t.Errorf("%s: Claim: %v", runner, err)
						}
						return
					}
					mu.Lock()
					for _, r := range reqs {
						if prev, dup := seen[r.ID]; dup {
							t.Errorf("request %d handed to %s and to %s", r.ID, prev, runner)
						}
						seen[r.ID] = runner
					}
					mu.Unlock()
					if err := s.Record(context.Background(), successes(reqs, runner)); err != nil {
						t.Errorf("%s: Record: %v", runner, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if len(seen) != total {
		t.Errorf("claimed %d distinct requests, want %d", len(seen), total)
	}
	for _, q := range []string{`SELECT count(*) FROM requests WHERE status = 'succeeded' AND attempts = 1`,
		`SELECT count(*) FROM results`, `SELECT count(*) FROM attempts`} {
		if got := queryInt(t, hosts[1], q); got != total {
			t.Errorf("%s = %d, want %d", q, got, total)
		}
	}
}

// TestRecordAcrossHostsExactlyOnce: two hosts record outcomes for the same
// running requests at once (a runner that lost them and the one that took
// them over), each in its own order, one host successes and the other
// failures: each request ends with one outcome, its attempt, and a result
// only if it succeeded.
func TestRecordAcrossHostsExactlyOnce(t *testing.T) {
	const total, rounds = 300, 5
	hosts := openHosts(t, 2)
	job, err := hosts[0].Import(context.Background(), jobs.Job{Name: "race", Source: "bench.jsonl"},
		&sliceSource{reqs: benchRequests(total)})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	reqs, err := hosts[0].Claim(context.Background(), job.ID, total, t0)
	if err != nil || len(reqs) != total {
		t.Fatalf("Claim() = %d, %v; want %d", len(reqs), err, total)
	}
	var wg sync.WaitGroup
	for h, s := range hosts {
		wg.Go(func() {
			for i := range rounds {
				// Each round records the requests from another place on,
				// so that two Records meet on rows in different orders.
				batch := rotate(reqs, (h*total/2+i*37)%total)
				outcomes := successes(batch, "ok")
				if h == 1 {
					outcomes = failures(batch)
				}
				if err := s.Record(context.Background(), outcomes); err != nil {
					t.Errorf("host %d: Record: %v", h, err)
				}
			}
		})
	}
	wg.Wait()
	succeeded := queryInt(t, hosts[0], `SELECT count(*) FROM requests WHERE status = 'succeeded'`)
	for _, c := range []struct {
		query string
		want  int
	}{
		{`SELECT count(*) FROM requests WHERE status IN ('succeeded', 'failed') AND attempts = 1`, total},
		{`SELECT count(*) FROM attempts`, total},
		{`SELECT count(*) FROM results`, succeeded},
		{`SELECT count(*) FROM results JOIN requests ON id = request_id WHERE status <> 'succeeded'`, 0},
		{`SELECT count(*) FROM requests WHERE status = 'failed' AND error_class IS NULL`, 0},
	} {
		if got := queryInt(t, hosts[0], c.query); got != c.want {
			t.Errorf("%s = %d, want %d", c.query, got, c.want)
		}
	}
}

// failures are permanent failures (400) of reqs.
func failures(reqs []jobs.Request) []jobs.Outcome {
	out := make([]jobs.Outcome, len(reqs))
	for i, r := range reqs {
		out[i] = jobs.Outcome{Request: r, Next: jobs.StatusFailed, CountAttempt: true,
			Attempt: &jobs.Attempt{RequestID: r.ID, Number: 1, StartedAt: t0, StatusCode: 400,
				Class: jobs.ClassInvalidRequest, Message: "bad"},
			Failure: &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "bad"}}
	}
	return out
}

// successes are plain successes of reqs whose content names who recorded
// them.
func successes(reqs []jobs.Request, by string) []jobs.Outcome {
	out := make([]jobs.Outcome, len(reqs))
	for i, r := range reqs {
		out[i] = jobs.Outcome{Request: r, Next: jobs.StatusSucceeded, CountAttempt: true,
			Attempt: &jobs.Attempt{RequestID: r.ID, Number: 1, StartedAt: t0, Duration: time.Second, StatusCode: 200},
			Result: &jobs.Result{RequestID: r.ID, StatusCode: 200, Raw: []byte(`{}`), Content: by,
				Latency: time.Second, CreatedAt: t0}}
	}
	return out
}

// rotate is reqs starting at k, wrapping around.
func rotate(reqs []jobs.Request, k int) []jobs.Request {
	return append(append([]jobs.Request(nil), reqs[k:]...), reqs[:k]...)
}
