package worker

import (
	"maps"
	"sync"

	"github.com/llmbatch/llmbatch/jobs"
)

// progress keeps a Runner's Progress.
type progress struct {
	mu       sync.Mutex
	p        jobs.Progress
	retrying map[int64]struct{} // request ids
}

// add counts an outcome; interruptions change nothing.
func (g *progress) add(o jobs.Outcome) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.retrying == nil {
		g.retrying, g.p.Usage = map[int64]struct{}{}, map[string]jobs.Usage{}
		g.p.Errors = map[jobs.ErrorClass]jobs.ErrorTally{}
	}
	if o.Failure != nil && o.Attempt != nil {
		g.tally(*o.Failure)
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

// tally counts a failed attempt under its class. The body is left out:
// the tally keeps only what a message about it shows.
func (g *progress) tally(f jobs.Failure) {
	f.Body = nil
	t := g.p.Errors[f.Class]
	if t.Count == 0 {
		t.First = f
	}
	t.Count++
	t.Last = f
	g.p.Errors[f.Class] = t
}

// Progress returns a snapshot of what the run has done so far. Safe to
// call from any goroutine, before, during and after Run.
func (r *Runner) Progress() jobs.Progress {
	p := r.progress.snapshot()
	p.State = r.State()
	return p
}

// snapshot copies the counts, so the caller may keep them.
func (g *progress) snapshot() jobs.Progress {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.p
	p.Retrying = int64(len(g.retrying))
	p.Usage = make(map[string]jobs.Usage, len(g.p.Usage))
	for m, u := range g.p.Usage {
		p.Usage[m] = u
	}
	p.Errors = maps.Clone(g.p.Errors)
	return p
}
