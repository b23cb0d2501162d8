package storetest

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

func testClaimInInputOrder(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "claim", chats(5))
	for _, tc := range []struct {
		n         int
		wantLines []int
	}{{0, nil}, {-1, nil}, {3, []int{1, 2, 3}}, {math.MaxInt, []int{4, 5}}, {3, nil}} {
		got := mustClaim(t, st, job.ID, tc.n)
		if lines := linesOf(got); !slices.Equal(lines, tc.wantLines) {
			t.Fatalf("Claim(%d) lines = %v, want %v", tc.n, lines, tc.wantLines)
		}
		for _, r := range got {
			if r.Status != jobs.StatusRunning || r.JobID != job.ID {
				t.Errorf("claimed line %d: status %s, job %d; want running, job %d", r.Line, r.Status, r.JobID, job.ID)
			}
		}
	}
	want := slices.Repeat([]jobs.Status{jobs.StatusRunning}, 5)
	if got := statuses(t, st, job.ID); !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
}

// testClaimOnlyDue: a request put back with a not-before time is claimed
// from that time on, and not a millisecond before.
func testClaimOnlyDue(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "due", chats(3))
	first := mustClaim(t, st, job.ID, 1)
	due := t0.Add(30 * time.Second)
	mustRecord(t, st, rateLimited(first[0], "slow down", due))
	for _, tc := range []struct {
		name      string
		now       time.Time
		wantLines []int
	}{
		{"BeforeNotBefore", t0, []int{2, 3}},
		{"OneMillisecondEarly", due.Add(-time.Millisecond), nil},
		{"AtNotBefore", due, []int{1}},
	} {
		got := mustClaimAt(t, st, job.ID, 10, tc.now)
		if lines := linesOf(got); !slices.Equal(lines, tc.wantLines) {
			t.Errorf("%s: claimed lines %v, want %v", tc.name, lines, tc.wantLines)
		}
		// A run puts an interrupted request back with the not-before time
		// and decides on giving up by the attempts Claim returns.
		if tc.name == "AtNotBefore" && len(got) == 1 && (got[0].Attempts != 1 || !got[0].NotBefore.Equal(due)) {
			t.Errorf("claimed again with %d attempts, not before %v; want 1, %v", got[0].Attempts, got[0].NotBefore, due)
		}
	}
}

// testClaimConcurrently claims and records from several goroutines at
// once: no request is handed out twice, and every one is handed out.
func testClaimConcurrently(t *testing.T, st jobs.Store) {
	const total, workers = 240, 4
	job := mustImport(t, st, "race", chats(total))
	claimed := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { claimed[w] = claimAll(t, st, job.ID) })
	}
	wg.Wait()
	seen := map[int64]int{}
	for w, ids := range claimed {
		for _, id := range ids {
			if prev, dup := seen[id]; dup {
				t.Fatalf("request %d handed to worker %d and to worker %d", id, prev, w)
			}
			seen[id] = w
		}
	}
	if len(seen) != total {
		t.Errorf("claimed %d distinct requests, want %d", len(seen), total)
	}
	stats := mustStats(t, st, job.ID)
	if got, want := stats.Counts, counts(0, 0, total, 0, 0); !sameCounts(got, want) || stats.Attempts != total {
		t.Errorf("Counts = %v with %d attempts, want %v with %d", got, stats.Attempts, want, total)
	}
}

// claimAll claims a few requests at a time and records their success
// until none is left, and returns the ids it claimed.
func claimAll(t *testing.T, st jobs.Store, jobID int64) []int64 {
	var ids []int64
	for {
		reqs, err := st.Claim(t.Context(), jobID, 4, t0)
		if err != nil || len(reqs) == 0 {
			if err != nil {
				t.Errorf("Claim: %v", err)
			}
			return ids
		}
		batch := make([]jobs.Outcome, len(reqs))
		for i, r := range reqs {
			ids, batch[i] = append(ids, r.ID), succeed(r)
		}
		if err := st.Record(t.Context(), batch); err != nil {
			t.Errorf("Record: %v", err)
			return ids
		}
	}
}

func testClaimCancelledJob(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "cancelled", chats(3))
	other := mustImport(t, st, "other", chats(2))
	if _, err := st.Cancel(t.Context(), job.ID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if got := mustClaim(t, st, job.ID, 10); len(got) != 0 {
		t.Errorf("Claim of a cancelled job = lines %v, want none", linesOf(got))
	}
	if got := linesOf(mustClaim(t, st, other.ID, 10)); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("Claim of another job = lines %v, want [1 2]", got)
	}
}

func testWaiting(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "waiting", chats(4))
	reqs := mustClaim(t, st, job.ID, 3)
	for _, tc := range []struct {
		name     string
		change   func()
		wantN    int
		wantNext time.Time
	}{
		{"UnclaimedAreDueNow", func() {}, 1, time.Time{}},
		{"EarliestNotBefore", func() {
			mustRecord(t, st, rateLimited(reqs[0], "a", t0.Add(10*time.Second)),
				rateLimited(reqs[1], "b", t0.Add(5*time.Second)), rateLimited(reqs[2], "c", t0.Add(20*time.Second)))
			mustClaim(t, st, job.ID, 1) // takes the one due now
		}, 3, t0.Add(5 * time.Second)},
		{"CancelledJob", func() {
			if _, err := st.Cancel(t.Context(), job.ID); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
		}, 0, time.Time{}},
	} {
		tc.change()
		n, next, err := st.Waiting(t.Context(), job.ID)
		if err != nil || n != tc.wantN || !next.Equal(tc.wantNext) {
			t.Errorf("%s: Waiting() = %d, %v, %v; want %d, %v, nil", tc.name, n, next, err, tc.wantN, tc.wantNext)
		}
	}
}
