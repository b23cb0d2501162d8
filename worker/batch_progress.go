package worker

import (
	"sync"

	"github.com/llmbatch/llmbatch/jobs"
)

// batchProgress is what a batch-mode run shows while it waits: the lines
// its batches answered, as the provider counts them until a batch is
// collected, and as recorded after.
type batchProgress struct {
	mu sync.Mutex
	// open holds the provider's counts of each batch not yet collected.
	open map[int64]jobs.BatchCounts
	// ok and failed count the lines this run recorded as succeeded and as
	// failed for good; retrying those it put back to pending.
	ok, failed, retrying int64
	usage                map[string]jobs.Usage
	tokens               int64
}

func newBatchProgress() *batchProgress {
	return &batchProgress{open: map[int64]jobs.BatchCounts{}, usage: map[string]jobs.Usage{}}
}

// seen notes what the provider says of an open batch.
func (p *batchProgress) seen(pb jobs.ProviderBatch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pb.State.Open() {
		p.open[pb.ID] = pb.Counts
	} else {
		delete(p.open, pb.ID)
	}
}

// forget drops a batch's provider counts: its lines are being recorded.
func (p *batchProgress) forget(id int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.open, id)
}

// recorded notes the outcomes of a batch's lines as they are recorded.
func (p *batchProgress) recorded(model string, o jobs.Outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case o.Next == jobs.StatusSucceeded:
		p.ok++
		if u := o.Result.Usage; u.Known {
			p.usage[model] = p.usage[model].Add(u)
			p.tokens += u.TotalTokens
		}
	case o.Next == jobs.StatusFailed:
		p.failed++
	case o.CountAttempt:
		p.retrying++
	}
}

// snapshot is the run's progress: lines recorded, and lines the open
// batches answered that are not recorded yet.
func (p *batchProgress) snapshot() jobs.Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := jobs.Progress{Succeeded: p.ok, Failed: p.failed, Retrying: p.retrying, Tokens: p.tokens,
		Usage: make(map[string]jobs.Usage, len(p.usage)), BatchUsage: make(map[string]jobs.Usage, len(p.usage))}
	for m, u := range p.usage {
		out.Usage[m], out.BatchUsage[m] = u, u // every answer here came through a batch
	}
	for _, c := range p.open {
		out.Succeeded += int64(c.Completed)
	}
	return out
}

// Progress is what the run has done so far, for the progress display.
func (b *BatchRunner) Progress() jobs.Progress { return b.progress.snapshot() }
