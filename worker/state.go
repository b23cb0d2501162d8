package worker

import (
	"context"
	"sync"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// State returns how the run is pacing itself now: the effective
// concurrency, the calls in flight, the limits and any pause.
func (r *Runner) State() jobs.RunState {
	s := r.pace.state()
	s.InFlight = int(r.calling.Load())
	r.out.state(&s)
	s.UpdatedAt = r.opts.Now()
	return s
}

// saveStates saves the run's State every Options.StateEvery while the run
// goes, when the queue can keep it, so that status can show it; the
// returned function stops saving and forgets the state, since a run that
// has ended paces nothing. Saving is best effort: a state that cannot be
// saved costs status a line, not the run its work, so errors are dropped.
func (r *Runner) saveStates(ctx context.Context) (stop func()) {
	store, ok := r.q.(jobs.RunStateStore)
	if !ok {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.opts.StateEvery)
		defer t.Stop()
		for {
			_ = store.SaveRunState(ctx, r.jobID, r.State())
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		_ = store.ClearRunState(context.Background(), r.jobID)
	}
}
