package cli

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
)

// cacheOptions shape a run's cache pass (hidden flags of run, for tests).
type cacheOptions struct {
	// Lead is how long a run answers from the cache before it starts
	// sending; the rest of the pass goes on beside the run. A pass looks
	// at far more requests a second than claims take, in the same order,
	// so it stays ahead (BENCHMARKS.md).
	Lead time.Duration
	// Chunk is how many request ids one transaction of the pass looks at:
	// short enough that the run's own writes wait little for it.
	Chunk int
}

// defaultCacheOptions are the cache pass's defaults.
var defaultCacheOptions = cacheOptions{Lead: 100 * time.Millisecond, Chunk: 5_000}

// cachePass answers the job's pending requests that an identical request
// of this database was answered for (unless --no-cache), copying that
// answer instead of sending them: for its lead before the run sends
// anything, then (after resume) beside it.
type cachePass struct {
	opts   cacheOptions
	job    jobs.Job
	pass   jobs.CachePass
	more   bool // the lead left requests to look at
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// beside counts the requests answered beside the run, for its
	// progress; err is the error that ended the pass there.
	beside atomic.Int64
	err    error
}

// startCachePass answers from the cache for up to its lead; with noCache
// it does nothing.
func startCachePass(ctx context.Context, st jobs.Store, job jobs.Job, opts cacheOptions, noCache bool) (*cachePass, error) {
	c := &cachePass{opts: opts, job: job, cancel: func() {}}
	if noCache {
		return c, nil
	}
	c.pass = st.NewCachePass(job.ID)
	for deadline := time.Now().Add(opts.Lead); ; {
		more, err := c.pass.Next(ctx, opts.Chunk)
		if err != nil {
			return c, err
		}
		if c.more = more; !more || !time.Now().Before(deadline) {
			return c, nil
		}
	}
}

// resume goes on with the pass in the background, until it is done, ctx
// ends, or stop is called. A run calls it once it has read what the job
// did before it, so that what the pass answers from then on counts only
// in answeredBeside.
func (c *cachePass) resume(ctx context.Context) {
	if !c.more {
		return
	}
	ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for ctx.Err() == nil {
			before := c.pass.Answered()
			more, err := c.pass.Next(ctx, c.opts.Chunk)
			c.beside.Add(int64(c.pass.Answered() - before))
			if err != nil && ctx.Err() == nil {
				c.err = err
			}
			if err != nil || !more {
				return
			}
		}
	}()
}

// answeredBeside is how many requests the pass answered beside the run.
func (c *cachePass) answeredBeside() int64 { return c.beside.Load() }

// stop ends the pass and says how many requests it answered. A pass cut
// short by the end of the run leaves the rest for the next run (it is a
// cache: nothing is lost, a request it did not reach is sent).
func (c *cachePass) stop(stderr io.Writer) error {
	c.cancel()
	c.wg.Wait()
	if c.pass != nil && c.pass.Answered() > 0 {
		fmt.Fprintf(stderr, "llmbatch: job %s: %s answered from the cache (identical requests answered before in this database; --no-cache sends them)\n",
			c.job.Name, output.Plural(c.pass.Answered(), "request"))
	}
	return c.err
}
