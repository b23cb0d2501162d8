package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// A run whose store shares the job with other runs (Options.Shared) keeps
// --rpm, --tpm, --max-tokens and --max-cost for the job as a whole: it
// sends only what it was granted from the job's buckets, publishes the
// pauses of its throttles and takes up those of the others, and reserves
// each request's worst case in the job's budget ledger. The pacer and the
// budget stay as they are and ask the shared side besides; a run without
// Options.Shared never touches it.

const (
	// grantWindow is the time of a run's rate one grant of a shared bucket
	// holds: a run takes its grants up to this much at a time, and the
	// job's bucket saves up no more than twice that (see sharedRate and
	// bucketTake). The larger, the fewer round trips to the database and
	// the larger the bursts.
	grantWindow = 100 * time.Millisecond
	// sharedRecheck is how long a request that waits for a grant waits at
	// most before it asks again; a grant arriving wakes it sooner.
	sharedRecheck = 50 * time.Millisecond
	// sharedPoll is how often a run reads the job's pause when nothing
	// else it does with the database tells it.
	sharedPoll = 100 * time.Millisecond
	// holdFor is how long what a run holds of the job's budget lasts unless
	// renewed, and renewEvery how often a run with a budget renews it: a
	// run that died blocks the others' budget for at most holdFor.
	holdFor    = 30 * time.Second
	renewEvery = holdFor / 3
	// leaveTimeout bounds the last settle and the leave at the end of a
	// run; what a run fails to release lapses after holdFor.
	leaveTimeout = 5 * time.Second
)

// shared is a run's side of its job's shared limits: the local allowance
// of the rate (rate, which the pacer asks), the pause to publish, and the
// settles of the budget not yet written, which a goroutine of its own
// (loop) exchanges with the database.
type shared struct {
	sl    jobs.SharedLimits
	jobID int64
	// run names this run in the job's ledger.
	run    string
	rate   *sharedRate
	pace   *pacer
	budget bool // the run has a budget: it holds, settles and renews
	// poke wakes the dispatcher (a grant arrived), fail ends the run.
	poke func()
	fail func(error)

	// ctx is the run's, for the reservations, which the admissions make.
	ctx  context.Context
	wake chan struct{}
	mu   sync.Mutex
	// pause is a pause to publish (0: none); release and spent sum the
	// settles not yet written, settles counts them.
	pause          time.Duration
	release, spent jobs.Amount
	settles        int
	// heard is when an answer last told the job's pause, renewed when the
	// hold was last renewed, rateAt when the rate may take again; only the
	// loop touches them.
	heard, renewed, rateAt time.Time
}

func newShared(sl jobs.SharedLimits, jobID int64, opts Options, pace *pacer) *shared {
	sh := &shared{sl: sl, jobID: jobID, run: runName(), pace: pace,
		budget: opts.Budget.MaxTokens > 0 || opts.Budget.MaxCost > 0,
		poke:   func() {}, fail: func(error) {}, wake: make(chan struct{}, 1)}
	sh.rate = newSharedRate(opts.RPM, opts.TPM, sh.signal)
	pace.shared = sh.rate
	pace.publish = sh.publish
	return sh
}

// runName is a name no other run of the job has: 64 random bits.
func runName() string {
	b := make([]byte, 8)
	rand.Read(b) // never returns an error
	return hex.EncodeToString(b)
}

// signal wakes the loop.
func (sh *shared) signal() {
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

// join makes the run a party to the job's limits, bringing what the job
// spent before it as its budget says, and takes up the ledger's spent.
func (sh *shared) join(ctx context.Context, b *budget) error {
	var spent jobs.Amount
	if sh.budget {
		spent = jobs.Amount{Tokens: b.SpentTokens, Cost: b.SpentCost}
	}
	v, err := sh.sl.JoinLimits(ctx, sh.jobID, sh.run, spent, holdFor)
	if err != nil {
		return err
	}
	sh.ctx = ctx
	if sh.budget {
		b.mu.Lock()
		b.SpentTokens, b.SpentCost = v.Spent.Tokens, v.Spent.Cost
		b.mu.Unlock()
	}
	sh.heard, sh.renewed = time.Now(), time.Now()
	sh.paused(v.PausedFor)
	return nil
}

// start runs the loop until the function it returns is called, which then
// writes the last settles and leaves the job's limits.
func (sh *shared) start(ctx context.Context) (stop func()) {
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sh.loop(loopCtx)
	}()
	return func() {
		cancel()
		<-done
		// Past the run's end: its context may be cancelled, and what is
		// not released here lapses after holdFor anyway.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
		defer cancel()
		if sh.flush(ctx, false) == nil {
			_ = sh.sl.LeaveLimits(ctx, sh.jobID, sh.run)
		}
	}
}

// loop exchanges with the database what is due, then sleeps until woken
// or until something falls due; an error of the database ends the run.
func (sh *shared) loop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next, err := sh.step(ctx)
		if err != nil {
			if ctx.Err() == nil {
				sh.fail(err)
			}
			return
		}
		t.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-sh.wake:
		case <-t.C:
		}
	}
}

// step publishes a pause, writes the settles (or renews the hold), takes
// grants the rate needs, and reads the job's pause if nothing else told
// it lately; it returns how long until it must look again.
func (sh *shared) step(ctx context.Context) (time.Duration, error) {
	if err := sh.publishPause(ctx); err != nil {
		return 0, err
	}
	if err := sh.flush(ctx, sh.budget && time.Since(sh.renewed) >= renewEvery); err != nil {
		return 0, err
	}
	next, err := sh.takeRate(ctx)
	if err != nil {
		return 0, err
	}
	if time.Since(sh.heard) >= sharedPoll {
		v, err := sh.sl.ReadLimits(ctx, sh.jobID)
		if err != nil {
			return 0, err
		}
		sh.told(v.PausedFor)
	}
	poll := sh.heard.Add(sharedPoll).Sub(time.Now())
	if next <= 0 || poll < next {
		next = poll
	}
	return max(time.Millisecond, next), nil
}

// told takes up the job's pause from an answer of the database.
func (sh *shared) told(pausedFor time.Duration) {
	sh.heard = time.Now()
	sh.paused(pausedFor)
}

// paused pauses this run's dispatch for the job's pause.
func (sh *shared) paused(d time.Duration) {
	if d > 0 {
		sh.pace.pauseUntil(sh.pace.now().Add(d))
	}
}

// publish is the pacer telling of a pause of d from now that a throttle
// made; the loop publishes it.
func (sh *shared) publish(d time.Duration) {
	sh.mu.Lock()
	sh.pause = max(sh.pause, d)
	sh.mu.Unlock()
	sh.signal()
}

func (sh *shared) publishPause(ctx context.Context) error {
	sh.mu.Lock()
	d := sh.pause
	sh.pause = 0
	sh.mu.Unlock()
	if d <= 0 {
		return nil
	}
	paused, err := sh.sl.Pause(ctx, sh.jobID, d)
	if err != nil {
		return err
	}
	sh.told(paused)
	return nil
}

// settle queues the end of a reservation r that spent what it did.
func (sh *shared) settle(r reservation, spent jobs.Amount) {
	sh.mu.Lock()
	sh.release.Tokens += r.tokens
	sh.release.Cost += r.cost
	sh.spent.Tokens += spent.Tokens
	sh.spent.Cost += spent.Cost
	sh.settles++
	sh.mu.Unlock()
	sh.signal()
}

// flush writes the settles queued, in one statement, or renews the hold
// when renew says so and none are queued.
func (sh *shared) flush(ctx context.Context, renew bool) error {
	sh.mu.Lock()
	release, spent, n := sh.release, sh.spent, sh.settles
	sh.release, sh.spent, sh.settles = jobs.Amount{}, jobs.Amount{}, 0
	sh.mu.Unlock()
	if n == 0 && !renew {
		return nil
	}
	v, err := sh.sl.Settle(ctx, sh.jobID, sh.run, release, spent, holdFor)
	if err != nil {
		return err
	}
	sh.renewed = time.Now()
	sh.told(v.PausedFor)
	return nil
}

// reserve reserves r in the job's ledger against the run's budget b (whose
// lock the caller holds).
func (sh *shared) reserve(b *budget, r reservation) (bool, jobs.LimitsView, error) {
	fit, v, err := sh.sl.Reserve(sh.ctx, sh.jobID, sh.run,
		jobs.Amount{Tokens: r.tokens, Cost: r.cost}, jobs.Amount{Tokens: b.MaxTokens, Cost: b.MaxCost}, holdFor)
	if err == nil {
		sh.paused(v.PausedFor)
	}
	return fit, v, err
}

// reserveShared is budget.reserve against the job's ledger: r, the worst
// case of request id, fits if it fits beside what the job spent and what
// every live run holds. A request that does not fit waits while any run
// holds something (it may settle for less); with nothing held, the budget
// is reached. It is called with b.mu held, and lets it go during the
// round trip, so that settles are not held up; admissions, which reserve,
// are one at a time.
func (b *budget) reserveShared(id string, r reservation) (reservation, budgetFit) {
	b.mu.Unlock()
	fit, v, err := b.shared.reserve(b, r)
	b.mu.Lock()
	switch {
	case err != nil:
		if b.shared.ctx.Err() == nil { // else the run was stopped hard
			b.shared.fail(err)
		}
		return reservation{}, budgetWait // the run is ending
	case fit:
		b.reserved.tokens += r.tokens
		b.reserved.cost += r.cost
		b.inFlight++
		return r, budgetFits
	case v.Held.Tokens > 0: // every reservation holds tokens
		return reservation{}, budgetWait
	}
	// The view was read after the check: what held r back may have
	// settled since. Spent only grows, so r not fitting beside it alone
	// never will.
	flag := ""
	switch {
	case b.MaxTokens > 0 && v.Spent.Tokens+r.tokens > b.MaxTokens:
		flag = "--max-tokens"
	case b.MaxCost > 0 && v.Spent.Cost+r.cost > b.MaxCost:
		flag = "--max-cost"
	default:
		return reservation{}, budgetWait
	}
	b.SpentTokens, b.SpentCost = v.Spent.Tokens, v.Spent.Cost
	b.reached, b.blocked, b.need = flag, id, r
	return reservation{}, budgetReached
}

// sharedRate is the part of the job's rate a run was granted and has not
// yet sent, which the pacer spends: a request goes once it has one
// request and (with --tpm) min(its tokens, a grant) tokens, and is charged
// its tokens in full, which may leave the tokens negative for later grants
// to pay back, as bucket does. The loop tops it up to a grant's worth
// (grantWindow of the rate) whenever it runs below half of it while
// requests are sent, or a request waits; an idle run takes nothing. Its
// methods are safe for concurrent use.
type sharedRate struct {
	mu       sync.Mutex
	rpm, tpm float64 // per minute; 0: no such limit
	// reqGrant and tokGrant are a grant's worth.
	reqGrant, tokGrant float64
	reqs, toks         float64
	// tokNeed is what the request waiting needs of tokens; want says the
	// loop should take.
	tokNeed float64
	want    bool
	signal  func()
}

func newSharedRate(rpm, tpm int, signal func()) *sharedRate {
	s := &sharedRate{rpm: float64(rpm), tpm: float64(tpm), signal: signal}
	s.reqGrant = max(1, s.rpm/60*grantWindow.Seconds())
	s.tokGrant = max(1, s.tpm/60*grantWindow.Seconds())
	return s
}

func (s *sharedRate) active() bool { return s.rpm > 0 || s.tpm > 0 }

// wait returns 0 if a request of cost tokens may go on what was granted,
// else how long to wait at most, and asks the loop for a grant.
func (s *sharedRate) wait(cost int64) time.Duration {
	if !s.active() {
		return 0
	}
	s.mu.Lock()
	need := min(float64(cost), s.tokGrant)
	short := (s.rpm > 0 && s.reqs < 1) || (s.tpm > 0 && s.toks < need)
	if short {
		s.tokNeed, s.want = need, true
	}
	s.mu.Unlock()
	if !short {
		return 0
	}
	s.signal()
	return sharedRecheck
}

// take spends what a request of cost tokens sent.
func (s *sharedRate) take(cost int64) {
	if !s.active() {
		return
	}
	s.mu.Lock()
	if s.rpm > 0 {
		s.reqs--
	}
	if s.tpm > 0 {
		s.toks -= float64(cost)
	}
	low := (s.rpm > 0 && s.reqs < s.reqGrant/2) || (s.tpm > 0 && s.toks < s.tokGrant/2)
	s.want = s.want || low
	s.mu.Unlock()
	if low {
		s.signal()
	}
}

// give credits n tokens a request was charged and did not use (a negative
// n charges them).
func (s *sharedRate) give(n int64) {
	if s.tpm <= 0 {
		return
	}
	s.mu.Lock()
	s.toks += float64(n)
	s.mu.Unlock()
}

// asks returns the takes to top the allowance up with, and false when
// none is wanted.
func (s *sharedRate) asks() (req, tok jobs.BucketTake, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.want {
		return req, tok, false
	}
	if s.rpm > 0 && s.reqs < s.reqGrant {
		req = bucketTake(s.rpm, s.reqGrant, s.reqs, 1)
	}
	if s.tpm > 0 && s.toks < s.tokGrant {
		tok = bucketTake(s.tpm, s.tokGrant, s.toks, max(1, s.tokNeed))
	}
	if req.Want == 0 && tok.Want == 0 {
		s.want = false
		return req, tok, false
	}
	return req, tok, true
}

// bucketTake asks for what tops have up to a grant of the rate perMinute,
// and for at least half a grant or what need lacks (so that a run waiting
// for a grant does not ask for a sliver at a time). The bucket saves up
// two grants while nobody takes, so that the job loses none of its rate
// when its runs come back late, as a busy host's may.
func bucketTake(perMinute, grant, have, need float64) jobs.BucketTake {
	want := grant - have
	least := min(want, grant, max(grant/2, need-have))
	return jobs.BucketTake{PerMinute: perMinute, Burst: 2 * grant, Want: want, Least: least}
}

// granted adds g, taken for req and tok, and returns how long until the
// job's buckets should hold again what a take asks for at least, when a
// take got less than it wanted (the bucket is empty, or held less than
// that); 0 when every take got what it wanted and the run lacks nothing.
func (s *sharedRate) granted(g jobs.RateGrant, req, tok jobs.BucketTake) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs += g.Requests
	s.toks += g.Tokens
	var wait time.Duration
	if req.Want > 0 && g.Requests < req.Want {
		wait = max(wait, refillTime(req.Least-(g.RequestsLeft-g.Requests), req.PerMinute))
	}
	if tok.Want > 0 && g.Tokens < tok.Want {
		wait = max(wait, refillTime(tok.Least-(g.TokensLeft-g.Tokens), tok.PerMinute))
	}
	if short := (s.rpm > 0 && s.reqs < 1) || (s.tpm > 0 && s.toks < s.tokNeed); !short {
		s.want = false
		return wait
	}
	return max(time.Millisecond, wait)
}

// refillTime is how long a bucket of perMinute takes to refill n.
func refillTime(n, perMinute float64) time.Duration {
	return time.Duration(max(0, n) / perMinute * float64(time.Minute))
}

// takeRate takes the grants the allowance wants, and returns how long
// until it should take again (0: nothing more is wanted now). After a
// take that got nothing, or left the run short, it takes again only once
// the job's buckets should hold what it asks for, however often requests
// ask.
func (sh *shared) takeRate(ctx context.Context) (time.Duration, error) {
	if wait := time.Until(sh.rateAt); wait > 0 {
		return wait, nil
	}
	req, tok, ok := sh.rate.asks()
	if !ok {
		return 0, nil
	}
	g, err := sh.sl.TakeRate(ctx, sh.jobID, req, tok)
	if err != nil {
		return 0, err
	}
	sh.told(g.PausedFor)
	next := sh.rate.granted(g, req, tok)
	sh.rateAt = time.Now().Add(next)
	if g.Requests > 0 || g.Tokens > 0 {
		sh.poke()
	}
	return next, nil
}
