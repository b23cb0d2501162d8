package jobs

import (
	"errors"
	"testing"
	"time"
)

func TestCopyKey(t *testing.T) {
	tests := []struct {
		key  string
		n    int
		want string
	}{
		{"llmbatch-night-0a1b2c.jsonl", 1, "llmbatch-night-0a1b2c-copy.jsonl"},
		{"llmbatch-night-0a1b2c.jsonl", 2, "llmbatch-night-0a1b2c-copy2.jsonl"},
		{"llmbatch-night-0a1b2c-copy.jsonl", 1, "llmbatch-night-0a1b2c-copy-copy.jsonl"},
		{"no-extension", 1, "no-extension-copy"},
		{".hidden", 3, ".hidden-copy3"},
	}
	for _, tt := range tests {
		if got := CopyKey(tt.key, tt.n); got != tt.want {
			t.Errorf("CopyKey(%q, %d) = %q, want %q", tt.key, tt.n, got, tt.want)
		}
	}
}

// TestLiveLock: a copy is refused while the job's lock is held by a run
// whose heartbeat is fresh and that is not known to be dead.
func TestLiveLock(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	holder := LockOwner{Token: "t", PID: 42, Host: "laptop"}
	tests := []struct {
		name string
		job  Job
		dead bool
		live bool
	}{
		{"NoLock", Job{}, false, false},
		{"Fresh", Job{Lock: holder, LockHeartbeat: now.Add(-10 * time.Second)}, false, true},
		{"Stale", Job{Lock: holder, LockHeartbeat: now.Add(-30 * time.Second)}, false, false},
		{"FreshButDead", Job{Lock: holder, LockHeartbeat: now.Add(-time.Second)}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := CopyOptions{StaleAfter: 30 * time.Second, Now: func() time.Time { return now },
				Dead: func(LockOwner) bool { return tt.dead }}
			err := liveLock(tt.job, opts)
			var le *LockedError
			if got := errors.As(err, &le); got != tt.live || got && le.Holder != holder {
				t.Errorf("liveLock = %v, want live %v (holder %+v)", err, tt.live, holder)
			}
		})
	}
}

// TestCheckBatches: a chunk may name only the head's provider batches, in
// a request, an attempt or a result.
func TestCheckBatches(t *testing.T) {
	known := map[int64]int64{7: 1}
	tests := []struct {
		name string
		c    CopyRequest
		ok   bool
	}{
		{"None", CopyRequest{Attempts: []Attempt{{}}, Result: &Result{}}, true},
		{"Known", CopyRequest{Batch: 7, Attempts: []Attempt{{ProviderBatch: 7}}, Result: &Result{ProviderBatch: 7}}, true},
		{"Request", CopyRequest{Batch: 8}, false},
		{"Attempt", CopyRequest{Attempts: []Attempt{{}, {ProviderBatch: 8}}}, false},
		{"Result", CopyRequest{Result: &Result{ProviderBatch: 8}}, false},
	}
	for _, tt := range tests {
		if err := CheckBatches([]CopyRequest{{}, tt.c}, known); (err == nil) != tt.ok {
			t.Errorf("%s: CheckBatches = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
