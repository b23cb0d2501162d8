package sqlite

import (
	"context"
	"errors"
	"github.com/llmbatch/llmbatch/internal/testclock"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

const staleAfter = 30 * time.Second

var (
	ownerA = jobs.LockOwner{Token: "token-a", PID: 101, Host: "host-a"}
	ownerB = jobs.LockOwner{Token: "token-b", PID: 202, Host: "host-b"}
	ownerC = jobs.LockOwner{Token: "token-c", PID: 303, Host: "host-c"}
)

// lockState reads the lock columns of a job.
func lockState(tb testing.TB, s *Store, jobID int64) (jobs.LockOwner, time.Time, error) {
	tb.Helper()
	return s.lockHolder(context.Background(), jobID)
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	alive := func(jobs.LockOwner) bool { return false }
	tests := []struct {
		name string
		// run acts on a job ownerA locked at t0; then the lock should be
		// held by wantHolder with heartbeat wantBeat.
		run        func(t *testing.T, s *Store, c *testclock.Clock, jobID int64)
		wantHolder jobs.LockOwner
		wantBeat   time.Time
	}{
		{"FirstOwnerGetsIt", func(t *testing.T, s *Store, c *testclock.Clock, id int64) {}, ownerA, t0},
		{"SecondOwnerIsRefused", func(t *testing.T, s *Store, c *testclock.Clock, id int64) {
			c.Advance(time.Second)
			err := s.Lock(ctx, id, ownerB, staleAfter, alive)
			var le *jobs.LockedError
			if !errors.As(err, &le) || !errors.Is(err, jobs.ErrLocked) {
				t.Fatalf("Lock(B) error = %v, want a *jobs.LockedError matching ErrLocked", err)
			}
			if le.Holder != ownerA || !le.Heartbeat.Equal(t0) {
				t.Errorf("LockedError = %+v, want holder %+v with heartbeat %v", *le, ownerA, t0)
			}
			if msg := err.Error(); !strings.Contains(msg, "pid 101 on host-a") {
				t.Errorf("message %q does not name pid 101 on host-a", msg)
			}
		}, ownerA, t0},
		{"SameOwnerRelocks", func(t *testing.T, s *Store, c *testclock.Clock, id int64) {
			c.Advance(time.Minute)
			if err := s.Lock(ctx, id, ownerA, staleAfter, alive); err != nil {
				t.Fatalf("Lock(A) again: %v", err)
			}
		}, ownerA, t0.Add(time.Minute)},
		{"StaleHeartbeatTakenOver", func(t *testing.T, s *Store, c *testclock.Clock, id int64) {
			c.Advance(staleAfter)
			if err := s.Lock(ctx, id, ownerB, staleAfter, alive); !errors.Is(err, jobs.ErrLocked) {
				t.Fatalf("Lock(B) exactly staleAfter later: error = %v, want ErrLocked", err)
			}
			c.Advance(time.Millisecond)
			if err := s.Lock(ctx, id, ownerB, staleAfter, alive); err != nil {
				t.Fatalf("Lock(B) past staleAfter: %v", err)
			}
		}, ownerB, t0.Add(staleAfter + time.Millisecond)},
		{"DeadHolderTakenOverAtOnce", func(t *testing.T, s *Store, c *testclock.Clock, id int64) {
			c.Advance(time.Second)
			var asked []jobs.LockOwner
			dead := func(h jobs.LockOwner) bool { asked = append(asked, h); return h.PID == ownerA.PID }
			if err := s.Lock(ctx, id, ownerB, staleAfter, dead); err != nil {
				t.Fatalf("Lock(B) with dead holder: %v", err)
			}
			if len(asked) != 1 || asked[0] != ownerA {
				t.Errorf("dead() asked about %+v, want [%+v]", asked, ownerA)
			}
		}, ownerB, t0.Add(time.Second)},
		{"HeartbeatAfterTakeover", func(t *testing.T, s *Store, c *testclock.Clock, id int64) {
			if err := s.Lock(ctx, id, ownerB, staleAfter, func(jobs.LockOwner) bool { return true }); err != nil {
				t.Fatalf("Lock(B): %v", err)
			}
			c.Advance(5 * time.Second)
			if err := s.Heartbeat(ctx, id, ownerA); !errors.Is(err, jobs.ErrLockLost) {
				t.Errorf("Heartbeat(A) error = %v, want ErrLockLost", err)
			}
			if err := s.Heartbeat(ctx, id, ownerB); err != nil {
				t.Errorf("Heartbeat(B): %v", err)
			}
		}, ownerB, t0.Add(5 * time.Second)},
		{"UnlockByNonOwner", func(t *testing.T, s *Store, c *testclock.Clock, id int64) {
			if err := s.Unlock(ctx, id, ownerB); err != nil {
				t.Errorf("Unlock(B): %v", err)
			}
		}, ownerA, t0},
		{"UnlockThenAnotherLocks", func(t *testing.T, s *Store, c *testclock.Clock, id int64) {
			if err := s.Unlock(ctx, id, ownerA); err != nil {
				t.Fatalf("Unlock(A): %v", err)
			}
			if h, _, _ := lockState(t, s, id); h != (jobs.LockOwner{}) {
				t.Errorf("holder after Unlock = %+v, want none", h)
			}
			c.Advance(time.Second)
			if err := s.Lock(ctx, id, ownerC, staleAfter, alive); err != nil {
				t.Fatalf("Lock(C): %v", err)
			}
		}, ownerC, t0.Add(time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t)
			c := clockOf(s)
			job := mustImport(t, s, "locked", chatRequests(1))
			if err := s.Lock(ctx, job.ID, ownerA, staleAfter, alive); err != nil {
				t.Fatalf("Lock(A): %v", err)
			}
			tt.run(t, s, c, job.ID)
			holder, beat, err := lockState(t, s, job.ID)
			if err != nil || holder != tt.wantHolder || !beat.Equal(tt.wantBeat) {
				t.Errorf("lock = %+v at %v, %v; want %+v at %v", holder, beat, err, tt.wantHolder, tt.wantBeat)
			}
		})
	}
}

func TestLockMissingJob(t *testing.T) {
	s := mustOpenStore(t)
	err := s.Lock(context.Background(), 999, ownerA, staleAfter, nil)
	if !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Lock(missing job) error = %v, want ErrNotFound", err)
	}
}
