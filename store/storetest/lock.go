package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

var (
	ownerA = jobs.LockOwner{Token: "token-a", PID: 101, Host: "host-a"}
	ownerB = jobs.LockOwner{Token: "token-b", PID: 202, Host: "host-b"}
	ownerC = jobs.LockOwner{Token: "token-c", PID: 303, Host: "host-c"}
)

// live is a staleAfter no test outlives, and alive a dead func that finds
// every holder alive: together, a lock that must not be taken over.
const live = time.Hour

func alive(jobs.LockOwner) bool { return false }

// staleSoon is a staleAfter that a few milliseconds of waiting pass.
const staleSoon = time.Millisecond

// waitStale lets a heartbeat grow older than staleSoon, by a margin for an
// engine that keeps times to the millisecond.
func waitStale() { time.Sleep(20 * staleSoon) }

// lockedJob imports a job and locks it for ownerA.
func lockedJob(t *testing.T, st jobs.Store, name string) jobs.Job {
	t.Helper()
	job := mustImport(t, st, name, chats(2))
	if err := st.Lock(t.Context(), job.ID, ownerA, live, alive); err != nil {
		t.Fatalf("Lock(A): %v", err)
	}
	return job
}

// checkHolder checks who holds the job's lock, as Job shows it.
func checkHolder(t *testing.T, st jobs.Store, name string, want jobs.LockOwner) {
	t.Helper()
	job := mustJob(t, st, name)
	if job.Lock != want || job.LockHeartbeat.IsZero() != (want == jobs.LockOwner{}) {
		t.Errorf("lock held by %+v (heartbeat %v), want %+v", job.Lock, job.LockHeartbeat, want)
	}
}

// checkLocked checks that err refuses the lock because holder runs the job.
func checkLocked(t *testing.T, err error, holder jobs.LockOwner) {
	t.Helper()
	var le *jobs.LockedError
	if !errors.As(err, &le) || !errors.Is(err, jobs.ErrLocked) {
		t.Fatalf("Lock error = %v, want a *jobs.LockedError matching ErrLocked", err)
	}
	if le.Holder != holder || le.Heartbeat.IsZero() {
		t.Errorf("LockedError = %+v, want holder %+v with its heartbeat", *le, holder)
	}
}

// checkAsked checks that Lock asked dead about the holder, and only it.
func checkAsked(t *testing.T, asked []jobs.LockOwner, holder jobs.LockOwner) {
	t.Helper()
	if len(asked) == 0 || slices.ContainsFunc(asked, func(h jobs.LockOwner) bool { return h != holder }) {
		t.Errorf("dead() asked about %+v, want %+v", asked, holder)
	}
}

func testLockRefusedWhileLive(t *testing.T, st jobs.Store) {
	job := lockedJob(t, st, "locked")
	checkHolder(t, st, "locked", ownerA)
	var asked []jobs.LockOwner
	err := st.Lock(t.Context(), job.ID, ownerB, live, func(h jobs.LockOwner) bool { asked = append(asked, h); return false })
	checkLocked(t, err, ownerA)
	checkAsked(t, asked, ownerA)
	checkLocked(t, st.Lock(t.Context(), job.ID, ownerB, live, nil), ownerA)
	checkHolder(t, st, "locked", ownerA)
}

func testLockSameOwnerRelocks(t *testing.T, st jobs.Store) {
	job := lockedJob(t, st, "relock")
	first := mustJob(t, st, "relock").LockHeartbeat
	waitStale()
	if err := st.Lock(t.Context(), job.ID, ownerA, live, alive); err != nil {
		t.Fatalf("Lock(A) again: %v", err)
	}
	checkHolder(t, st, "relock", ownerA)
	if again := mustJob(t, st, "relock").LockHeartbeat; !again.After(first) {
		t.Errorf("heartbeat after relocking = %v, want after %v", again, first)
	}
}

func testLockTakenOverWhenStale(t *testing.T, st jobs.Store) {
	job := lockedJob(t, st, "stale")
	waitStale()
	checkLocked(t, st.Lock(t.Context(), job.ID, ownerB, live, alive), ownerA)
	if err := st.Lock(t.Context(), job.ID, ownerB, staleSoon, alive); err != nil {
		t.Fatalf("Lock(B) of a stale lock: %v", err)
	}
	checkHolder(t, st, "stale", ownerB)
	if err := st.Heartbeat(t.Context(), job.ID, ownerA); !errors.Is(err, jobs.ErrLockLost) {
		t.Errorf("Heartbeat(A) after the takeover = %v, want ErrLockLost", err)
	}
	if err := st.Heartbeat(t.Context(), job.ID, ownerB); err != nil {
		t.Errorf("Heartbeat(B): %v", err)
	}
	checkLocked(t, st.Lock(t.Context(), job.ID, ownerC, live, alive), ownerB)
}

func testLockTakenOverFromDeadHolder(t *testing.T, st jobs.Store) {
	job := lockedJob(t, st, "dead")
	var asked []jobs.LockOwner
	dead := func(h jobs.LockOwner) bool { asked = append(asked, h); return h.Token == ownerA.Token }
	if err := st.Lock(t.Context(), job.ID, ownerB, live, dead); err != nil {
		t.Fatalf("Lock(B) with a dead holder: %v", err)
	}
	checkAsked(t, asked, ownerA)
	checkHolder(t, st, "dead", ownerB)
	if err := st.Heartbeat(t.Context(), job.ID, ownerA); !errors.Is(err, jobs.ErrLockLost) {
		t.Errorf("Heartbeat(A) after the takeover = %v, want ErrLockLost", err)
	}
}

func testHeartbeat(t *testing.T, st jobs.Store) {
	job := lockedJob(t, st, "beat")
	first := mustJob(t, st, "beat").LockHeartbeat
	waitStale()
	if err := st.Heartbeat(t.Context(), job.ID, ownerA); err != nil {
		t.Fatalf("Heartbeat(A): %v", err)
	}
	if beat := mustJob(t, st, "beat").LockHeartbeat; !beat.After(first) {
		t.Errorf("heartbeat = %v after Heartbeat, want after %v", beat, first)
	}
	if err := st.Heartbeat(t.Context(), job.ID, ownerB); !errors.Is(err, jobs.ErrLockLost) {
		t.Errorf("Heartbeat(B), never the holder = %v, want ErrLockLost", err)
	}
	if _, err := st.Cancel(t.Context(), job.ID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if err := st.Heartbeat(t.Context(), job.ID, ownerA); !errors.Is(err, jobs.ErrCancelled) {
		t.Errorf("Heartbeat(A) of a cancelled job = %v, want ErrCancelled", err)
	}
	checkHolder(t, st, "beat", ownerA)
	if err := st.Unlock(t.Context(), job.ID, ownerA); err != nil {
		t.Fatalf("Unlock(A): %v", err)
	}
	if err := st.Heartbeat(t.Context(), job.ID, ownerA); !errors.Is(err, jobs.ErrLockLost) {
		t.Errorf("Heartbeat(A) after Unlock = %v, want ErrLockLost", err)
	}
}

func testUnlock(t *testing.T, st jobs.Store) {
	job := lockedJob(t, st, "unlock")
	if err := st.Unlock(t.Context(), job.ID, ownerB); err != nil {
		t.Errorf("Unlock(B), not the holder: %v", err)
	}
	checkHolder(t, st, "unlock", ownerA)
	if err := st.Unlock(t.Context(), job.ID, ownerA); err != nil {
		t.Fatalf("Unlock(A): %v", err)
	}
	checkHolder(t, st, "unlock", jobs.LockOwner{})
	if err := st.Lock(t.Context(), job.ID, ownerC, live, alive); err != nil {
		t.Fatalf("Lock(C) after Unlock: %v", err)
	}
	checkHolder(t, st, "unlock", ownerC)
}
