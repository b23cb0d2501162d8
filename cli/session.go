package cli

// A live run's session: its lock on the job with the heartbeat that
// renews it, and the two-stage handling of SIGINT and SIGTERM.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/worker"
)

// Lock timing: a live run renews its heartbeat every lockBeat; a lock not
// renewed for lockStale belongs to a run that is gone.
const (
	lockBeat  = 5 * time.Second
	lockStale = 30 * time.Second
)

// handleSignals makes the first SIGINT/SIGTERM stop claiming and start the
// drain clock, and the second cancel at once.
func handleSignals(runner *worker.Runner, cancel context.CancelFunc, drain time.Duration, stderr io.Writer) func() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		fmt.Fprintf(stderr, "llmbatch: stopping: no new requests; waiting up to %s for those in flight (signal again to stop at once)\n", drain)
		runner.Stop()
		t := time.NewTimer(drain)
		defer t.Stop()
		select {
		case <-sigs:
		case <-t.C:
		case <-done:
			return
		}
		cancel()
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// heartbeat renews the run's lock until ctx ends. A lost lock stops the
// run (lost says why); a cancelled job stops its claiming, and the run ends
// once what is in flight is recorded; the lock is renewed meanwhile, so
// that nothing takes the job over from a run still draining.
func heartbeat(ctx context.Context, st jobs.Store, jobID int64, owner jobs.LockOwner, beat time.Duration, runner stopper, lost chan<- error, msgs io.Writer) {
	t := time.NewTicker(beat)
	defer t.Stop()
	cancelled := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		switch err := st.Heartbeat(ctx, jobID, owner); {
		case errors.Is(err, jobs.ErrLockLost):
			lost <- err
			runner.Stop()
			return
		case errors.Is(err, jobs.ErrCancelled) && !cancelled:
			cancelled = true
			fmt.Fprintln(msgs, "llmbatch: the job was cancelled: no new requests; those in flight finish")
			runner.Stop()
		}
	}
}

// beatOf is how often a run whose claim lasts lease renews it: lockBeat
// for the default lease, a sixth of a shorter one.
func beatOf(lease time.Duration) time.Duration {
	return min(lockBeat, lease/6)
}

// stopper is what the heartbeat stops: the batch phase of a run, then its
// online runner.
type stopper interface{ Stop() }

// switchStop stops whatever part of the run is working now.
type switchStop struct {
	mu      sync.Mutex
	stop    func()
	stopped bool
}

// set makes stop what Stop calls from now on; it is called at once when
// Stop came before.
func (s *switchStop) set(stop func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop = stop
	if s.stopped {
		stop()
	}
}

func (s *switchStop) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.stop != nil {
		s.stop()
	}
}

func newOwner() jobs.LockOwner {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	host, _ := os.Hostname()
	return jobs.LockOwner{Token: hex.EncodeToString(b), PID: os.Getpid(), Host: host}
}

// ownerDead reports whether a lock holder on this host no longer runs.
func ownerDead(o jobs.LockOwner) bool {
	host, _ := os.Hostname()
	if o.Host != host || o.PID <= 0 {
		return false
	}
	if err := syscall.Kill(o.PID, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	return zombie(o.PID)
}

// zombie reports whether pid has ended but not yet been reaped (Linux): a
// run killed a moment ago is one until its parent, or init, waits for it.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'Z' || b[i+2] == 'X'
}
