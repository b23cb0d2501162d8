package worker

import (
	"sync"

	"github.com/llmbatch/llmbatch/jobs"
)

// Progress is what a run has done since it started, counted as its
// attempts end (before they are committed), so that reading it costs no
// query.
type Progress struct {
	// Succeeded and Failed count the requests this run finished.
	Succeeded, Failed int64
	// Retrying counts the requests this run put back to pending after a
	// retryable error and has not finished since: those waiting out their
	// backoff or being sent again. A request a fatal error or an
	// interruption hands back is not counted, nor one an earlier run left
	// pending after a retryable error until this run has tried it.
	Retrying int64
	// Usage is the usage reported per requested model.
	Usage map[string]jobs.Usage
	// Tokens is the total tokens reported, all models together.
	Tokens int64
	// State is the run's pacing now: effective concurrency and in flight.
	State jobs.RunState
}

// progress keeps a Runner's Progress.
type progress struct {
	mu       sync.Mutex
	p        Progress
	retrying map[int64]struct{} // request ids
}

// add counts an outcome; interruptions change nothing.
func (g *progress) add(o jobs.Outcome) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.retrying == nil {
		g.retrying, g.p.Usage = map[int64]struct{}{}, map[string]jobs.Usage{}
	}
	id := o.Request.ID
	switch {
	case o.Attempt == nil || !o.CountAttempt:
		return
	case o.Next == jobs.StatusPending:
		g.retrying[id] = struct{}{}
		return
	case o.Next == jobs.StatusSucceeded:
		g.p.Succeeded++
	case o.Next == jobs.StatusFailed:
		g.p.Failed++
	}
	delete(g.retrying, id)
	if o.Result != nil && o.Result.Usage.Known {
		u, r := g.p.Usage[o.Request.Model], o.Result.Usage
		u.Known = true
		u.PromptTokens += r.PromptTokens
		u.CompletionTokens += r.CompletionTokens
		u.ReasoningTokens += r.ReasoningTokens
		u.CachedTokens += r.CachedTokens
		u.TotalTokens += r.TotalTokens
		g.p.Usage[o.Request.Model] = u
		g.p.Tokens += r.TotalTokens
	}
}

// Progress returns a snapshot of what the run has done so far. Safe to
// call from any goroutine, before, during and after Run.
func (r *Runner) Progress() Progress {
	p := r.progress.snapshot()
	p.State = r.State()
	return p
}

// snapshot copies the counts, so the caller may keep them.
func (g *progress) snapshot() Progress {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.p
	p.Retrying = int64(len(g.retrying))
	p.Usage = make(map[string]jobs.Usage, len(g.p.Usage))
	for m, u := range g.p.Usage {
		p.Usage[m] = u
	}
	return p
}
