package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

// The tests of this file hold the engine to jobs.Runners: several runs,
// each a Store of its own (a pool of its own, as on its own host), work
// one job at once, with leases short enough to expire within a test.

// runnerOwner is the owner of run i, on a host of its own.
func runnerOwner(i int) jobs.LockOwner {
	return jobs.LockOwner{Token: fmt.Sprintf("run-%d", i), PID: 1000 + i, Host: fmt.Sprintf("host-%d", i)}
}

// mustLock admits owner to the job through s with the lease period given.
func mustLock(t *testing.T, s *Store, jobID int64, owner jobs.LockOwner, period time.Duration) {
	t.Helper()
	if err := s.Lock(t.Context(), jobID, owner, period, nil); err != nil {
		t.Fatalf("Lock(%s): %v", owner.Token, err)
	}
}

// claimN claims up to n requests through s.
func claimN(t *testing.T, s *Store, jobID int64, n int) []jobs.Request {
	t.Helper()
	reqs, err := s.Claim(t.Context(), jobID, n, time.Now())
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return reqs
}

func mustRecordOn(t *testing.T, s *Store, outcomes ...jobs.Outcome) {
	t.Helper()
	if err := s.Record(t.Context(), outcomes); err != nil {
		t.Fatalf("Record: %v", err)
	}
}

// handBack is the outcome of a request claimed and never sent.
func handBack(r jobs.Request) jobs.Outcome {
	return jobs.Outcome{Request: r, Next: jobs.StatusPending}
}

// statusesOf are the statuses of the requests ids, in their order.
func statusesOf(t *testing.T, s *Store, ids []int64) []jobs.Status {
	t.Helper()
	out := make([]jobs.Status, len(ids))
	for i, id := range ids {
		var st string
		if err := s.pool.QueryRow(t.Context(), `SELECT status FROM requests WHERE id = $1`, id).Scan(&st); err != nil {
			t.Fatalf("status of request %d: %v", id, err)
		}
		out[i] = jobs.Status(st)
	}
	return out
}

func idsOf(reqs []jobs.Request) []int64 {
	ids := make([]int64, len(reqs))
	for i, r := range reqs {
		ids[i] = r.ID
	}
	return ids
}

func repeat(st jobs.Status, n int) []jobs.Status { return slices.Repeat([]jobs.Status{st}, n) }

// leasedTo counts the running requests of the job leased to token.
func leasedTo(t *testing.T, s *Store, jobID int64, token string) int {
	t.Helper()
	return queryInt(t, s, `SELECT count(*) FROM requests WHERE job_id = $1 AND status = 'running' AND lease_owner = $2`,
		jobID, token)
}

// TestRunnersClaimApart: three runs on three hosts claim one job at once;
// none is refused, no request goes to two of them, each holds what it
// took under its own lease, and LiveRunners lists them, oldest first,
// with what each holds.
func TestRunnersClaimApart(t *testing.T) {
	const total = 600
	hosts := openHosts(t, 3)
	job := mustImportLines(t, hosts[0], "apart", chatLines(total, "m", nil))
	for i, s := range hosts {
		mustLock(t, s, job.ID, runnerOwner(i), time.Minute)
	}
	claimed := make([][]int64, len(hosts))
	var wg sync.WaitGroup
	for i, s := range hosts {
		wg.Go(func() {
			for {
				reqs, err := s.Claim(context.Background(), job.ID, 7, time.Now())
				if err != nil {
					t.Errorf("run %d: Claim: %v", i, err)
				}
				if len(reqs) == 0 {
					return
				}
				claimed[i] = append(claimed[i], idsOf(reqs)...)
			}
		})
	}
	wg.Wait()
	owner := map[int64]int{}
	for i, ids := range claimed {
		for _, id := range ids {
			if prev, dup := owner[id]; dup {
				t.Errorf("request %d claimed by run %d and run %d", id, prev, i)
			}
			owner[id] = i
		}
		if got := leasedTo(t, hosts[0], job.ID, runnerOwner(i).Token); got != len(ids) {
			t.Errorf("run %d claimed %d, and %d are leased to it", i, len(ids), got)
		}
	}
	if len(owner) != total {
		t.Errorf("%d distinct requests claimed, want %d", len(owner), total)
	}
	live, err := hosts[2].LiveRunners(t.Context(), job.ID)
	if err != nil {
		t.Fatalf("LiveRunners: %v", err)
	}
	if len(live) != len(hosts) {
		t.Fatalf("LiveRunners lists %d runs, want %d: %+v", len(live), len(hosts), live)
	}
	for i, r := range live {
		if r.Owner != runnerOwner(i) || r.Running != len(claimed[i]) || r.StartedAt.IsZero() || r.Heartbeat.Before(r.StartedAt) {
			t.Errorf("LiveRunners[%d] = %+v, want %+v holding %d, with its start and heartbeat", i, r, runnerOwner(i), len(claimed[i]))
		}
	}
}

// TestLeaseTakenOver: a run whose heartbeat stops loses what it holds once
// its lease period has passed (not before); another run's heartbeat puts
// it back to pending with its attempts as they were, and that run claims
// and records it. The first run's late Record changes nothing: the
// other's result stands, once. Its heartbeat then says it was given up,
// and it claims nothing more.
func TestLeaseTakenOver(t *testing.T) {
	const period = time.Second
	hosts := openHosts(t, 2)
	a, b := hosts[0], hosts[1]
	job := mustImportLines(t, a, "takeover", chatLines(6, "m", nil))
	mustLock(t, a, job.ID, runnerOwner(0), period)
	mustLock(t, b, job.ID, runnerOwner(1), period)
	held := claimN(t, a, job.ID, 4)
	if err := b.Heartbeat(t.Context(), job.ID, runnerOwner(1)); err != nil {
		t.Fatalf("Heartbeat(b): %v", err)
	}
	if got := statusesOf(t, b, idsOf(held)); !slices.Equal(got, repeat(jobs.StatusRunning, 4)) {
		t.Fatalf("a's requests after b's heartbeat, within a's lease: %v, want running", got)
	}
	// Only b beats from now on.
	start := time.Now()
	waitFor(t, 5*period, "a's requests to come back", func() bool {
		if err := b.Heartbeat(t.Context(), job.ID, runnerOwner(1)); err != nil {
			t.Fatalf("Heartbeat(b): %v", err)
		}
		return leasedTo(t, b, job.ID, runnerOwner(0).Token) == 0
	})
	if took := time.Since(start); took < period*8/10 {
		t.Errorf("a's requests came back %s after its last heartbeat, before its lease of %s ended", took, period)
	}
	if got := queryInt(t, b, `SELECT count(*) FROM requests WHERE job_id = $1 AND status = 'pending' AND attempts = 0`, job.ID); got != 6 {
		t.Errorf("%d pending requests with no attempt used, want all 6", got)
	}
	taken := claimN(t, b, job.ID, 6)
	if len(taken) != 6 {
		t.Fatalf("b claimed %d, want 6", len(taken))
	}
	mustRecordOn(t, a, successes(held, "a, late")...)
	if got := leasedTo(t, b, job.ID, runnerOwner(1).Token); got != 6 {
		t.Errorf("after a's late Record, %d requests are b's, want 6", got)
	}
	mustRecordOn(t, b, successes(taken, "b")...)
	for q, want := range map[string]int{
		`SELECT count(*) FROM results WHERE job_id = $1 AND content = 'b'`:                          6,
		`SELECT count(*) FROM results WHERE job_id = $1`:                                            6,
		`SELECT count(*) FROM attempts WHERE job_id = $1`:                                           6,
		`SELECT count(*) FROM requests WHERE job_id = $1 AND status = 'succeeded' AND attempts = 1`: 6,
	} {
		if got := queryInt(t, a, q, job.ID); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
	if err := a.Heartbeat(t.Context(), job.ID, runnerOwner(0)); !errors.Is(err, jobs.ErrLockLost) {
		t.Errorf("Heartbeat(a) after its lease expired = %v, want ErrLockLost", err)
	}
}

// TestLateRecordBeforeAnySweep: a run whose lease has expired records
// nothing, even before any heartbeat put its requests back; and a run
// given up claims nothing, though requests are pending.
func TestLateRecordBeforeAnySweep(t *testing.T) {
	const period = 300 * time.Millisecond
	hosts := openHosts(t, 1)
	a := hosts[0]
	job := mustImportLines(t, a, "late", chatLines(4, "m", nil))
	mustLock(t, a, job.ID, runnerOwner(0), period)
	held := claimN(t, a, job.ID, 2)
	time.Sleep(period + 100*time.Millisecond)
	mustRecordOn(t, a, success(held[0]), failures(held[1:])[0])
	if got := statusesOf(t, a, idsOf(held)); !slices.Equal(got, repeat(jobs.StatusRunning, 2)) {
		t.Errorf("after a Record past the lease: %v, want both still running, unrecorded", got)
	}
	if got := claimN(t, a, job.ID, 10); len(got) != 0 {
		t.Errorf("a run whose lease expired claimed %d requests", len(got))
	}
	if got := queryInt(t, a, `SELECT count(*) FROM attempts WHERE job_id = $1`, job.ID); got != 0 {
		t.Errorf("%d attempts recorded past the lease, want 0", got)
	}
	if err := a.Heartbeat(t.Context(), job.ID, runnerOwner(0)); !errors.Is(err, jobs.ErrLockLost) {
		t.Errorf("Heartbeat past the lease = %v, want ErrLockLost", err)
	}
}

// TestRecoverLeavesLiveRunsAlone: Recover puts back what runs that are
// gone left running (a run whose lease expired, one that dead says is
// gone, a claim of no run), and nothing a live run holds, which that run
// then records.
func TestRecoverLeavesLiveRunsAlone(t *testing.T) {
	hosts := openHosts(t, 5)
	live, expired, killed, nobody, recoverer := hosts[0], hosts[1], hosts[2], hosts[3], hosts[4]
	job := mustImportLines(t, live, "recover", chatLines(8, "m", nil))
	mustLock(t, live, job.ID, runnerOwner(0), time.Minute)
	mustLock(t, expired, job.ID, runnerOwner(1), 200*time.Millisecond)
	mustLock(t, killed, job.ID, runnerOwner(2), time.Minute)
	kept := claimN(t, live, job.ID, 2)
	claimN(t, expired, job.ID, 2)
	claimN(t, killed, job.ID, 2)
	claimN(t, nobody, job.ID, 2) // no Lock: a claim of no run
	time.Sleep(300 * time.Millisecond)
	// A new run on the killed run's host learns that its process is gone.
	dead := func(o jobs.LockOwner) bool { return o.Token == runnerOwner(2).Token }
	if err := recoverer.Lock(t.Context(), job.ID, runnerOwner(3), time.Minute, dead); err != nil {
		t.Fatalf("Lock with a dead run: %v", err)
	}
	if n, err := recoverer.Recover(t.Context(), job.ID); err != nil || n != 6 {
		t.Errorf("Recover() = %d, %v; want 6 (the expired run's, the killed run's, no run's)", n, err)
	}
	if got := statusesOf(t, live, idsOf(kept)); !slices.Equal(got, repeat(jobs.StatusRunning, 2)) {
		t.Errorf("the live run's requests after Recover: %v, want running", got)
	}
	if n, err := recoverer.Recover(t.Context(), job.ID); err != nil || n != 0 {
		t.Errorf("Recover() again = %d, %v; want 0", n, err)
	}
	mustRecordOn(t, live, successes(kept, "live")...)
	if got := statusesOf(t, live, idsOf(kept)); !slices.Equal(got, repeat(jobs.StatusSucceeded, 2)) {
		t.Errorf("the live run's requests after it recorded them: %v, want succeeded", got)
	}
}

// TestCancelStopsEveryRun: a cancel cancels what is pending and what dead
// runs left, leaves live runs what they hold, and stops every run's
// claiming; what they hand back is cancelled as leftovers, but nothing a
// live run still holds.
func TestCancelStopsEveryRun(t *testing.T) {
	hosts := openHosts(t, 3)
	a, b, gone := hosts[0], hosts[1], hosts[2]
	job := mustImportLines(t, a, "cancel", chatLines(8, "m", nil))
	mustLock(t, a, job.ID, runnerOwner(0), time.Minute)
	mustLock(t, b, job.ID, runnerOwner(1), time.Minute)
	mustLock(t, gone, job.ID, runnerOwner(2), 200*time.Millisecond)
	ra, rb := claimN(t, a, job.ID, 2), claimN(t, b, job.ID, 1)
	claimN(t, gone, job.ID, 1)
	time.Sleep(300 * time.Millisecond)
	if n, err := a.Cancel(t.Context(), job.ID); err != nil || n != 5 {
		t.Fatalf("Cancel() = %d, %v; want 5 (4 pending, 1 of the run that is gone)", n, err)
	}
	for i, s := range []*Store{a, b} {
		if err := s.Heartbeat(t.Context(), job.ID, runnerOwner(i)); !errors.Is(err, jobs.ErrCancelled) {
			t.Errorf("Heartbeat(run %d) after the cancel = %v, want ErrCancelled", i, err)
		}
	}
	if got := queryInt(t, a, `SELECT count(*) FROM requests WHERE job_id = $1 AND status = 'running'`, job.ID); got != 3 {
		t.Errorf("%d running after the cancel, want the live runs' 3", got)
	}
	mustRecordOn(t, a, success(ra[0]), handBack(ra[1]))
	if n, err := b.CancelLeftovers(t.Context(), job.ID); err != nil || n != 1 {
		t.Errorf("CancelLeftovers() while b holds one = %d, %v; want 1 (what a handed back)", n, err)
	}
	for _, s := range []*Store{a, b} {
		if got := claimN(t, s, job.ID, 10); len(got) != 0 {
			t.Errorf("a run claimed %d requests of the cancelled job", len(got))
		}
	}
	mustRecordOn(t, b, success(rb[0]))
	want := []jobs.Status{jobs.StatusSucceeded, jobs.StatusCancelled, jobs.StatusSucceeded}
	if got := statusesOf(t, a, append(idsOf(ra), rb[0].ID)); !slices.Equal(got, want) {
		t.Errorf("the live runs' requests: %v, want %v", got, want)
	}
}

// TestUnlockHandsOver: the job's lock columns name the newest run; when it
// ends they name a run still live, and what it left leased goes back to
// pending at once; LiveRunners no longer lists it.
func TestUnlockHandsOver(t *testing.T) {
	hosts := openHosts(t, 2)
	a, b := hosts[0], hosts[1]
	job := mustImportLines(t, a, "unlock", chatLines(4, "m", nil))
	mustLock(t, a, job.ID, runnerOwner(0), time.Minute)
	mustLock(t, b, job.ID, runnerOwner(1), time.Minute)
	if got, _ := a.Job(t.Context(), "unlock"); got.Lock != runnerOwner(1) {
		t.Errorf("the job's lock names %+v, want the newest run %+v", got.Lock, runnerOwner(1))
	}
	left := claimN(t, b, job.ID, 2)
	if err := b.Unlock(t.Context(), job.ID, runnerOwner(1)); err != nil {
		t.Fatalf("Unlock(b): %v", err)
	}
	if got, _ := a.Job(t.Context(), "unlock"); got.Lock != runnerOwner(0) {
		t.Errorf("after b ended the job's lock names %+v, want the live run %+v", got.Lock, runnerOwner(0))
	}
	if got := statusesOf(t, a, idsOf(left)); !slices.Equal(got, repeat(jobs.StatusPending, 2)) {
		t.Errorf("what b left leased: %v, want pending", got)
	}
	live, err := a.LiveRunners(t.Context(), job.ID)
	if err != nil || len(live) != 1 || live[0].Owner != runnerOwner(0) {
		t.Errorf("LiveRunners() = %+v, %v; want a alone", live, err)
	}
	if err := a.Unlock(t.Context(), job.ID, runnerOwner(0)); err != nil {
		t.Fatalf("Unlock(a): %v", err)
	}
	if got, _ := a.Job(t.Context(), "unlock"); got.Lock != (jobs.LockOwner{}) {
		t.Errorf("with no run left the job's lock names %+v", got.Lock)
	}
}

// TestWaitingForOtherRuns: a run with nothing to claim while another holds
// requests is told they are waiting (so it stays, to take them over should
// that run die), with no due time; once recorded, nothing waits.
func TestWaitingForOtherRuns(t *testing.T) {
	hosts := openHosts(t, 2)
	a, b := hosts[0], hosts[1]
	job := mustImportLines(t, a, "waiting", chatLines(3, "m", nil))
	mustLock(t, a, job.ID, runnerOwner(0), time.Minute)
	mustLock(t, b, job.ID, runnerOwner(1), time.Minute)
	held := claimN(t, a, job.ID, 3)
	if n, next, err := b.Waiting(t.Context(), job.ID); err != nil || n != 3 || !next.IsZero() {
		t.Errorf("Waiting() = %d, %v, %v; want 3 held by a, no due time", n, next, err)
	}
	mustRecordOn(t, a, successes(held, "a")...)
	if n, _, err := b.Waiting(t.Context(), job.ID); err != nil || n != 0 {
		t.Errorf("Waiting() after a recorded = %d, %v; want 0", n, err)
	}
}

// waitFor polls cond every 50ms until it holds, failing t after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStalledRunLetsGo: a run stopped in the middle of a transaction that
// locked what it held (as a SIGSTOP between Record's round trips leaves
// it) does not keep it past its lease: its session ends once idle for the
// lease period, and another run's heartbeat then gives back what it held.
// A failed write of a run given up says so (jobs.ErrLockLost).
func TestStalledRunLetsGo(t *testing.T) {
	const period = time.Second
	hosts := openHosts(t, 2)
	a, b := hosts[0], hosts[1]
	job := mustImportLines(t, a, "stalled", chatLines(3, "m", nil))
	mustLock(t, a, job.ID, runnerOwner(0), period)
	mustLock(t, b, job.ID, runnerOwner(1), period)
	held := claimN(t, a, job.ID, 3)
	tx, err := a.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	lock := &pgx.Batch{}
	queueIdleBound(lock, period)
	lock.Queue(`SELECT id FROM requests WHERE id = ANY($1) FOR UPDATE`, idsOf(held))
	if err := tx.SendBatch(t.Context(), lock).Close(); err != nil {
		t.Fatal(err)
	}
	// a stalls here, holding the rows.
	waitFor(t, 5*period, "a's requests to come back", func() bool {
		if err := b.Heartbeat(t.Context(), job.ID, runnerOwner(1)); err != nil {
			t.Fatalf("Heartbeat(b): %v", err)
		}
		return leasedTo(t, b, job.ID, runnerOwner(0).Token) == 0
	})
	if err := tx.Commit(t.Context()); err == nil {
		t.Errorf("the stalled transaction committed after its session should have ended")
	}
	cause := errors.New("connection lost")
	if err := b.givenUp(t.Context(), job.ID, cause); err != cause {
		t.Errorf("givenUp of a live run = %v, want the error as it is", err)
	}
	if err := a.givenUp(t.Context(), job.ID, cause); !errors.Is(err, jobs.ErrLockLost) || !errors.Is(err, cause) {
		t.Errorf("givenUp of a run given up = %v, want ErrLockLost and the cause", err)
	}
}
