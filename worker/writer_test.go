package worker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// claimedSuccesses claims n requests of a new job and returns an answer
// for each, as a call would.
func claimedSuccesses(t *testing.T, st jobs.Store, n int) []jobs.Outcome {
	t.Helper()
	jobID := mustImport(t, st, n)
	reqs, err := st.Claim(context.Background(), jobID, n, time.Now())
	if err != nil || len(reqs) != n {
		t.Fatalf("Claim: %d requests, %v", len(reqs), err)
	}
	out := make([]jobs.Outcome, n)
	for i, req := range reqs {
		req.Body = nil
		out[i] = jobs.Outcome{Request: req, Next: jobs.StatusSucceeded, CountAttempt: true,
			Attempt: &jobs.Attempt{RequestID: req.ID, Number: 1, StartedAt: time.Now(), StatusCode: 200},
			Result:  &jobs.Result{StatusCode: 200, Raw: []byte(`{}`), CreatedAt: time.Now()}}
	}
	return out
}

// newTestWriter starts a writer on st with a linger of an hour: a test
// that passes waited for none. committed counts what it committed.
func newTestWriter(t *testing.T, st jobs.Store, buffer int, calling func() bool, committed *atomic.Int64) *writer {
	w := newIdleWriter(st, buffer, calling, func(n int) { committed.Add(int64(n)) },
		func(err error) { t.Errorf("Record: %v", err) })
	w.linger = time.Hour
	w.start()
	return w
}

// While calls are in flight the writer waits for their outcomes until the
// group is full (a quarter of its buffer), and commits them together.
func TestWriterWaitsForAFullGroup(t *testing.T) {
	st := mustOpenStore(t)
	outcomes := claimedSuccesses(t, st, 4)
	var committed atomic.Int64
	w := newTestWriter(t, st, 16, func() bool { return true }, &committed)
	for _, o := range outcomes[:3] {
		w.submit(o)
	}
	time.Sleep(50 * time.Millisecond) // a writer that did not wait has committed by now
	if n := committed.Load(); n != 0 {
		t.Errorf("%d outcomes committed before the group was full", n)
	}
	w.submit(outcomes[3])
	waitFor(t, 10*time.Second, "the commit", func() bool { return committed.Load() == 4 })
	w.close()
	if w.commits != 1 || w.recorded != 4 {
		t.Errorf("%d outcomes in %d commits, want 4 in 1", w.recorded, w.commits)
	}
}

// With no call in flight, nothing could join an outcome: each is
// committed at once.
func TestWriterNothingInFlight(t *testing.T) {
	st := mustOpenStore(t)
	outcomes := claimedSuccesses(t, st, 3)
	var committed atomic.Int64
	w := newTestWriter(t, st, 16, func() bool { return false }, &committed)
	for i, o := range outcomes {
		w.submit(o)
		waitFor(t, 10*time.Second, "the commit", func() bool { return committed.Load() == int64(i+1) })
	}
	w.close()
	if w.commits != 3 || w.recorded != 3 {
		t.Errorf("%d outcomes in %d commits, want 3 in 3", w.recorded, w.commits)
	}
}

// The last call's outcome is committed without waiting: a run's end pays
// no linger.
func TestWriterCommitsWhenTheLastCallEnds(t *testing.T) {
	st := mustOpenStore(t)
	outcomes := claimedSuccesses(t, st, 2)
	var calling atomic.Int64
	calling.Store(2)
	var committed atomic.Int64
	w := newTestWriter(t, st, 64, func() bool { return calling.Load() > 0 }, &committed)
	defer w.close()
	for _, o := range outcomes {
		calling.Add(-1) // as a worker does before it submits its outcome
		w.submit(o)
	}
	waitFor(t, 10*time.Second, "the commit of both", func() bool { return committed.Load() == 2 })
}
