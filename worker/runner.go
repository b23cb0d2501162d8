package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"golang.org/x/sync/errgroup"
)

// Options configure a Runner.
type Options struct {
	// Concurrency is how many requests are in flight at most.
	Concurrency int
	// MinConcurrency is the least the adaptive controller lowers the
	// concurrency to when the provider pushes back (default a quarter of
	// Concurrency, at least 1).
	MinConcurrency int
	// MaxAttempts is how many attempts a request gets before it fails.
	MaxAttempts int
	Retry       RetryPolicy
	// ClaimBatch bounds how many requests one claim takes (default 256, and
	// at most 4 × Concurrency; Concurrency at most when RPM or TPM is set).
	// The runner claims the next batch while the calls of the last ones
	// run, so up to Concurrency + 3 batches (Concurrency + 1 batch when
	// paced) may be claimed (running) at once, of which at most Concurrency
	// are being sent.
	ClaimBatch int
	// RPM and TPM limit the requests and the estimated tokens (see
	// EstimateTokens) sent per minute; 0 means no limit.
	RPM, TPM int
	// Budget limits the tokens and the cost of the job: a request is sent
	// only if its worst case (EstimateParts, priced by its model) fits in
	// what the job spent and the requests in flight leave; the first that
	// does not stops the run with a *BudgetError.
	Budget Budget
	// BaseURL is where the client sends the requests, for the messages of
	// an outage and of an endpoint never reached.
	BaseURL string
	// Reached says the endpoint is known to answer (the job's earlier
	// results came from BaseURL): a run that meets no answer from its
	// first calls then pauses as in an outage, instead of stopping with an
	// *UnreachableError.
	Reached bool
	// StateEvery is how often a run whose queue is a jobs.RunStateStore
	// saves its RunState (default every second).
	StateEvery time.Duration
	// OnFailure, if not nil, is called with the outcome of every attempt
	// that failed, as it ends, before it is recorded (run --verbose prints
	// them). It runs on the worker goroutine that made the attempt, so it
	// must be quick, safe for concurrent use, and must not keep or change
	// the outcome's pointers past its return.
	OnFailure func(jobs.Outcome)
	// Shared, when other runs may work the job at once (a store that
	// implements jobs.SharedLimits, PostgreSQL), makes RPM, TPM and Budget
	// the job's: the runs keep them together through it (see
	// jobs.SharedLimits for what holds), and a pause a throttle makes in
	// one run pauses the others. Nil keeps them this run's own.
	Shared jobs.SharedLimits
	Now    func() time.Time
}

// Runner works one job until no request is left pending, it is stopped, or
// the API refuses the run.
type Runner struct {
	q      jobs.Queue
	jobID  int64
	client *Client
	opts   Options

	// inflight counts requests claimed whose outcome is not yet committed:
	// at most window.
	inflight atomic.Int64
	window   int64
	// calling counts requests admitted whose call has not ended; the pacer
	// keeps it within the effective concurrency.
	calling atomic.Int64
	// ready holds the claimed requests not yet sent, in claim order;
	// readyClosed is set when the run stops handing them out.
	readyMu     sync.Mutex
	ready       []jobs.Request
	readyClosed bool
	// batch is the most one claim takes; the dispatcher claims when fewer
	// than least requests are ready and least fit in the window (and, after
	// a claim that found fewer due requests than it asked for, only once
	// none is ready). least follows what the pool sends while a claim is
	// under way (see claimMarked), between minLeast and batch; admitted
	// counts the requests handed out, for that rate.
	batch, minLeast int
	least           atomic.Int64
	admitted        atomic.Int64
	// markFrom and markSent are when claimMarked last took the pool's rate
	// and how many requests had been admitted then, markRate the rate it
	// found (-1 before the first); only the dispatcher touches them.
	markFrom time.Time
	markSent int64
	markRate float64
	pace     *pacer
	wake     chan struct{}
	stopOnce sync.Once
	stopped  chan struct{}
	cancel   context.CancelFunc

	mu  sync.Mutex
	err error
	w   *writer

	progress progress
	budget   *budget
	out      *outage
	// shared is the run's side of the job's shared limits; nil without
	// Options.Shared.
	shared *shared
}

// FatalError stops a run: the API answered in a way every further request
// would repeat. It matches jobs.ErrFatalAPI.
type FatalError struct{ Failure jobs.Failure }

func (e *FatalError) Error() string { return e.Failure.Error() }

func (e *FatalError) Unwrap() error { return jobs.ErrFatalAPI }

// New returns a runner for the job.
func New(q jobs.Queue, jobID int64, client *Client, opts Options) *Runner {
	opts.Concurrency = max(1, opts.Concurrency)
	if opts.MinConcurrency <= 0 {
		opts.MinConcurrency = opts.Concurrency / 4
	}
	opts.MinConcurrency = min(max(1, opts.MinConcurrency), opts.Concurrency)
	opts.MaxAttempts = max(1, opts.MaxAttempts)
	if opts.ClaimBatch <= 0 {
		opts.ClaimBatch = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Retry.Initial <= 0 {
		opts.Retry = RetryPolicy{Initial: time.Second, Max: time.Minute}
	}
	if opts.StateEvery <= 0 {
		opts.StateEvery = time.Second
	}
	// The window leaves room for three batches beyond the pool (outcomes
	// waiting for their commit, the ready ones, the claim under way), so
	// that a fast run can claim while a batch is still ready (see
	// claimMarked). A batch is at most four pools, so that a small pool
	// does not keep hundreds of requests claimed (shown as running) ahead.
	batch := min(opts.ClaimBatch, 4*opts.Concurrency)
	window := opts.Concurrency + 3*batch
	if opts.RPM > 0 || opts.TPM > 0 {
		// A paced run sends slowly: claim no more than a pool's worth
		// ahead, so that requests do not sit claimed for minutes.
		batch = min(opts.ClaimBatch, opts.Concurrency)
		window = opts.Concurrency + batch
	}
	r := &Runner{q: q, jobID: jobID, client: client, opts: opts, budget: newBudget(opts.Budget),
		out:   newOutage(opts.BaseURL, opts.Concurrency, opts.Reached, opts.Now),
		batch: batch, minLeast: max(1, min(opts.Concurrency, batch)/4), window: int64(window),
		pace: newPacer(opts.Concurrency, opts.MinConcurrency, opts.RPM, opts.TPM, opts.Now),
		wake: make(chan struct{}, 1), stopped: make(chan struct{}), cancel: func() {}}
	r.least.Store(int64(batch)) // until claimMarked knows the pool's rate
	r.markRate = -1
	if opts.Shared != nil {
		r.shared = newShared(opts.Shared, jobID, opts, r.pace)
		r.shared.poke, r.shared.fail = r.poke, r.fail
		r.budget.shared = r.shared
	}
	return r
}

// task is a claimed request on its way to a worker, with the tokens it was
// charged (0 without --tpm).
type task struct {
	req  jobs.Request
	cost int64
	// reserved is the worst case reserved from the budget (zero without
	// one).
	reserved reservation
	// probe, when not 0, says the request tests an endpoint the run paused
	// for: the pause's number.
	probe int
}

// Stop makes the run stop claiming; requests in flight finish and are
// recorded, then Run returns jobs.ErrInterrupted. Safe to call many times
// and from any goroutine.
func (r *Runner) Stop() { r.stopOnce.Do(func() { close(r.stopped) }) }

// Run works the job. It returns nil when no request is left pending,
// jobs.ErrInterrupted when stopped or when ctx ends first (requests cut
// short go back to pending without using an attempt), a *FatalError when
// the API refuses the run, or the error that kept outcomes from being
// recorded. Cancelling ctx is the hard stop: calls in flight are abandoned.
func (r *Runner) Run(ctx context.Context) error {
	if r.shared != nil {
		if err := r.shared.join(ctx, r.budget); err != nil {
			return err
		}
		// Deferred first, so run last: after every worker has settled.
		defer r.shared.start(ctx)()
	}
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	r.cancel = cancel
	r.w = newWriter(r.q, int(r.window), func() bool { return r.calling.Load() > 0 }, r.committed, r.fail)
	r.mu.Unlock()
	stopState := r.saveStates(ctx)
	defer stopState()
	work := make(chan task)
	var g errgroup.Group
	g.SetLimit(r.opts.Concurrency)
	for i := 0; i < r.opts.Concurrency; i++ {
		g.Go(func() error {
			t, ok := <-work
			for ok {
				o := r.process(callCtx, t)
				r.budget.settle(t.reserved, t.req.Model, &o)
				r.progress.add(o)
				r.calling.Add(-1)
				if o.Failure != nil && r.opts.OnFailure != nil {
					r.opts.OnFailure(o)
				}
				r.w.submit(o)
				// The next task: one the dispatcher admitted, else one this
				// worker admits itself from the claimed requests, so that a
				// busy pool does not wait for the dispatcher to be
				// scheduled; else wait for the dispatcher.
				select {
				case t, ok = <-work:
					continue
				default:
				}
				if t, ok = r.take(callCtx); ok {
					continue
				}
				r.poke() // the dispatcher may have to claim, or to wait no longer
				t, ok = <-work
			}
			return nil
		})
	}
	finished, err := r.dispatch(ctx, work)
	close(work)
	_ = g.Wait() // the workers return no errors: every outcome goes to the writer
	r.w.close()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.err != nil:
		return r.err
	case err != nil:
		return err
	case !finished && r.budget.err() != nil:
		return r.budget.err()
	case !finished:
		return jobs.ErrInterrupted
	}
	return nil
}

// Stats reports how many transactions the writer committed and how many
// outcomes they held; valid after Run returns.
func (r *Runner) Stats() (commits, outcomes int) { return r.w.commits, r.w.recorded }

// fail records the first error that ends the run, stops claiming and
// abandons the calls in flight (they would fail the same way).
func (r *Runner) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	cancel := r.cancel
	r.mu.Unlock()
	r.Stop()
	cancel()
}

// committed is the writer's signal that n outcomes are durable.
func (r *Runner) committed(n int) {
	r.inflight.Add(int64(-n))
	r.poke()
}

// poke wakes the dispatcher if it waits.
func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Runner) isStopped() bool {
	select {
	case <-r.stopped:
		return true
	default:
		return false
	}
}

// dispatch claims batches while there is room in the pool, and hands the
// claimed requests to idle workers as the pacer admits them (busy workers
// admit their next request themselves, see take). It reports finished
// when no request is pending or in flight.
func (r *Runner) dispatch(ctx context.Context, work chan<- task) (bool, error) {
	batch, window := r.batch, r.window
	// Whatever ends the loop, the claimed requests not yet sent go back.
	defer r.closeReady()
	// short: the last claim found fewer due requests than it asked for;
	// the next waits until the ready ones are sent (a claim that finds
	// nothing is still a write transaction).
	short := false
	for !r.isStopped() && ctx.Err() == nil && r.budget.err() == nil {
		// The pacer keeps the calls within the concurrency; the window
		// bounds what is claimed but not yet committed. It is wider than
		// the pool, so that the next claim is taken while calls run and
		// outcomes wait for their commit, and a claim waits until a fair
		// share of the window is free, so that claims stay large.
		least := r.least.Load()
		if ready := r.readyLen(); ready < int(least) && (!short || ready == 0) {
			if free := window - r.inflight.Load(); free >= least || (free > 0 && r.calling.Load() == 0) {
				want := int(min(free, int64(batch)))
				n, err := r.claimMarked(ctx, want)
				if err != nil {
					return false, err
				}
				short = n < want
				if n == 0 && ready == 0 {
					done, err := r.idle(ctx)
					if done || err != nil {
						return done, err
					}
					continue
				}
			} else if ready == 0 {
				r.wait(ctx, time.Time{}, time.Second)
				continue
			}
		}
		t, d, ok := r.admitNext()
		switch {
		case ok:
			select {
			case work <- t:
			case <-r.stopped:
				r.unsend(t)
				return false, nil
			case <-ctx.Done():
				r.unsend(t)
				return false, nil
			}
		case d > 0:
			r.sleep(ctx, d)
		}
	}
	return false, nil
}

// claimMarked is claim that then sets the mark for the next claim: what
// the pool sends, at the rate it sent over the last tenth of a second or
// more, in four times the time this claim took, between minLeast and a
// batch (a batch until the first rate is known). A claim waits for the
// writer's commit in progress, several milliseconds under load: at zero
// latency the pool sends a batch meanwhile (with a fixed mark of a quarter
// pool the workers often found nothing ready: BENCHMARKS.md, "third
// pass"), while a pool of slow calls sends nearly nothing, and a high mark
// would only keep more requests claimed ahead.
func (r *Runner) claimMarked(ctx context.Context, n int) (int, error) {
	start := time.Now()
	k, err := r.claim(ctx, n)
	took := time.Since(start)
	if r.markFrom.IsZero() {
		r.markFrom, r.markSent = start, r.admitted.Load()
		return k, err
	}
	if span := start.Sub(r.markFrom); span >= rateSpan {
		sent := r.admitted.Load()
		rate := float64(sent-r.markSent) / span.Seconds()
		r.markRate, r.markFrom, r.markSent = rate, start, sent
	}
	if r.markRate >= 0 {
		mark := int64(4 * r.markRate * took.Seconds())
		r.least.Store(min(max(mark, int64(r.minLeast)), int64(r.batch)))
	}
	return k, err
}

// rateSpan is the shortest time over which claimMarked takes the pool's
// rate: between claims a few milliseconds apart, it is mostly noise.
const rateSpan = 100 * time.Millisecond

// claim claims up to n requests and queues them as ready to send; it
// returns how many it claimed.
func (r *Runner) claim(ctx context.Context, n int) (int, error) {
	// A claim cut short by ctx may already have moved its requests to
	// running, where nobody would hand them back: let it finish; the loop
	// then ends and closeReady releases what it took.
	reqs, err := r.q.Claim(context.WithoutCancel(ctx), r.jobID, n, r.opts.Now())
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		return 0, err
	}
	r.inflight.Add(int64(len(reqs)))
	r.readyMu.Lock()
	r.ready = append(r.ready, reqs...)
	r.readyMu.Unlock()
	return len(reqs), nil
}

func (r *Runner) readyLen() int {
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	return len(r.ready)
}

// take is a worker admitting its next request itself: the first claimed
// request not yet sent, if the budget and the pacer let it go now.
func (r *Runner) take(ctx context.Context) (task, bool) {
	if r.isStopped() || ctx.Err() != nil {
		return task{}, false
	}
	t, _, ok := r.admitNext()
	return t, ok
}

// admitNext reserves the budget for the first ready request and asks the
// pacer whether it may go now. If so it takes it from the queue, counts it
// as calling and returns it; else it returns how long to wait before
// asking again (0 when nothing is ready or the budget is reached). Workers
// and the dispatcher admit under one lock, so that the calls never pass
// the concurrency.
func (r *Runner) admitNext() (task, time.Duration, bool) {
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	if r.readyClosed || len(r.ready) == 0 {
		return task{}, 0, false
	}
	t := task{req: r.ready[0]}
	var d time.Duration
	if t.probe, d = r.out.admit(); d > 0 {
		return task{}, d, false
	}
	if r.pace.estimates() {
		t.cost = EstimateTokens(t.req.Body)
	}
	if r.budget.shared != nil && r.budget.active() {
		// A shared reservation is a round trip: none for a request the
		// pacer would hold back anyway.
		if d := r.pace.ready(int(r.calling.Load()), t.cost); d > 0 {
			r.out.unsent(t.probe)
			return task{}, d, false
		}
	}
	var fit budgetFit
	if t.reserved, fit = r.budget.reserve(t.req.CustomID, t.req.Model, t.req.Body); fit != budgetFits {
		r.out.unsent(t.probe)
		if fit == budgetWait && r.shared != nil {
			return task{}, sharedPoll, false // the other runs' settles wake nobody here
		}
		if fit == budgetWait {
			return task{}, waitForCall, false // until a call in flight settles
		}
		r.poke() // the dispatcher ends the run
		return task{}, 0, false
	}
	if d := r.pace.admit(int(r.calling.Load()), t.cost); d > 0 {
		r.budget.settle(t.reserved, t.req.Model, nil)
		r.out.unsent(t.probe)
		return task{}, d, false
	}
	r.calling.Add(1)
	r.ready[0] = jobs.Request{}
	r.admitted.Add(1)
	if r.ready = r.ready[1:]; int64(len(r.ready)) < r.least.Load() {
		r.poke() // time to claim the next batch
	}
	return t, 0, true
}

// closeReady hands the claimed requests not yet sent back to pending, and
// keeps workers from taking any more.
func (r *Runner) closeReady() {
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	r.readyClosed = true
	r.release(r.ready)
	r.ready = nil
}

// unsend hands back a task admitted but not sent.
func (r *Runner) unsend(t task) {
	r.calling.Add(-1)
	r.budget.settle(t.reserved, t.req.Model, nil)
	r.out.unsent(t.probe)
	r.release([]jobs.Request{t.req})
}

// sleep waits for d or until woken; it reports false when the run stops.
func (r *Runner) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.wake:
	case <-r.stopped:
		return false
	case <-ctx.Done():
		return false
	}
	return true
}

// idle runs when nothing could be claimed: it reports done when nothing is
// pending or in flight, else waits for an outcome or the next due request.
func (r *Runner) idle(ctx context.Context) (bool, error) {
	// Read in-flight before counting pending: only the dispatcher claims, so
	// if nothing was in flight then, no outcome can put a request back after.
	inflight := r.inflight.Load()
	n, next, err := r.q.Waiting(ctx, r.jobID)
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, err
	}
	if n == 0 && inflight == 0 {
		return true, nil
	}
	if n == 0 {
		next = time.Time{}
	}
	most := time.Second
	if r.shared != nil && n > 0 {
		// What other runs hold may be all that is left, and their outcomes
		// wake nobody here: look again soon, so that this run ends soon
		// after the job's last answer.
		most = sharedPoll
	}
	r.wait(ctx, next, most)
	return false, nil
}

// wait sleeps until an outcome is committed, the next request falls due,
// the run stops, or most passes (to notice changes by other processes,
// such as the retry command, or other runs' outcomes).
func (r *Runner) wait(ctx context.Context, next time.Time, most time.Duration) {
	d := most
	if !next.IsZero() {
		d = min(d, max(time.Millisecond, next.Sub(r.opts.Now())))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.wake:
	case <-t.C:
	case <-r.stopped:
	case <-ctx.Done():
	}
}

// release hands claimed requests that were never sent back to pending.
func (r *Runner) release(reqs []jobs.Request) {
	for _, req := range reqs {
		r.w.submit(interrupted(req))
	}
}

// process makes one attempt at the task's request and decides what becomes
// of it.
func (r *Runner) process(ctx context.Context, t task) jobs.Outcome {
	req := t.req
	if ctx.Err() != nil {
		r.out.unsent(t.probe)
		return interrupted(req)
	}
	start := r.opts.Now()
	res, quota, err := r.client.CallQuota(ctx, &req)
	req.Body = nil // the writer needs only the ids; let the body go
	var ce *CallError
	if err == nil || errors.As(err, &ce) {
		r.pace.done(start, t.cost, res, ce, quota)
	} else {
		r.out.unsent(t.probe) // an interruption says nothing of the endpoint
	}
	attempt := &jobs.Attempt{RequestID: req.ID, Number: req.Attempts + 1, StartedAt: start,
		Duration: r.opts.Now().Sub(start)}
	if err == nil {
		r.out.done(req.ID, t.probe, res, nil, "")
		attempt.StatusCode = res.StatusCode
		res.CreatedAt = r.opts.Now()
		return jobs.Outcome{Request: req, Attempt: attempt, Next: jobs.StatusSucceeded, CountAttempt: true, Result: res}
	}
	if ce == nil {
		return interrupted(req)
	}
	v := r.out.done(req.ID, t.probe, nil, ce, r.opts.BaseURL+string(req.Endpoint))
	if err := r.out.gaveUp(); err != nil {
		r.fail(err)
	}
	attempt.StatusCode, attempt.Class, attempt.Message = ce.StatusCode, ce.Class, ce.Message
	return r.failed(req, attempt, ce, v)
}

// failed decides what becomes of a request whose attempt failed: back to
// pending without using an attempt while the endpoint was never reached
// or the job is paused for an outage (or the API refused the run), failed
// for good, or back to pending after a backoff.
func (r *Runner) failed(req jobs.Request, attempt *jobs.Attempt, ce *CallError, v verdict) jobs.Outcome {
	o := jobs.Outcome{Request: req, Attempt: attempt, Failure: &ce.Failure, CountAttempt: true}
	switch {
	case v.hold:
		o.Next, o.CountAttempt, o.NotBefore = jobs.StatusPending, false, req.NotBefore
	case ce.Class.Disposition() == jobs.Fatal:
		o.Next, o.CountAttempt = jobs.StatusPending, false
		r.fail(&FatalError{Failure: ce.Failure})
	case !v.counts:
		o.Next, o.CountAttempt, o.NotBefore = jobs.StatusPending, false, req.NotBefore
	case ce.Class.Disposition() == jobs.Permanent || req.Attempts+1 >= r.opts.MaxAttempts:
		o.Next = jobs.StatusFailed
	default:
		o.Next = jobs.StatusPending
		o.NotBefore = r.opts.Now().Add(r.opts.Retry.Delay(req.Attempts+1, ce.RetryAfter))
	}
	return o
}

// interrupted hands a request back to pending without using an attempt.
func interrupted(req jobs.Request) jobs.Outcome {
	req.Body = nil
	return jobs.Outcome{Request: req, Next: jobs.StatusPending, NotBefore: req.NotBefore}
}
