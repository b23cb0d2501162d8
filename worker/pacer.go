package worker

import (
	"sync"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// lowQuota is the share of a provider's limit below which the remaining
// quota it reports counts as low, and dispatch spreads the rest over the
// time until the limit resets.
const lowQuota = 0.1

// pacer decides when the dispatcher may send the next request. It holds
// the configured limits (token buckets for --rpm and --tpm), the adaptive
// controller, and what the provider said: the Retry-After of a throttle
// that makes the controller cut pauses dispatch for every worker (that of a
// scattered one only delays its own request, through its not-before time),
// and x-ratelimit-* headers pause it when a limit is used up or space
// requests out when little is left. Its methods are safe for concurrent
// use.
type pacer struct {
	mu  sync.Mutex
	now func() time.Time

	rpmLimit, tpmLimit int
	rpm, tpm           *bucket // nil without --rpm / --tpm
	adapt              adaptive
	learned            *bucket // the adaptive rate; nil until the first throttle
	calling            int     // the calls in flight at the last admit

	pausedUntil time.Time
	// spacing is the least time between two sends while a reported quota
	// is low, until spacingUntil; lastSent is when the last request went.
	spacing      time.Duration
	spacingUntil time.Time
	lastSent     time.Time
	// tokensPerRequest is a moving average of the tokens requests use, to
	// read a remaining-tokens header as a number of requests.
	tokensPerRequest float64

	// shared, when other runs share the job (Options.Shared), is what this
	// run was granted of the job's rate, which every send needs besides;
	// publish tells them of a pause a throttle made. Both nil otherwise.
	shared  *sharedRate
	publish func(time.Duration)
}

func newPacer(concurrency, minConcurrency, rpmLimit, tpmLimit int, now func() time.Time) *pacer {
	p := &pacer{now: now, rpmLimit: rpmLimit, tpmLimit: tpmLimit, adapt: newAdaptive(concurrency, minConcurrency)}
	t := now()
	if rpmLimit > 0 {
		p.rpm = newBucket(float64(rpmLimit), t)
	}
	if tpmLimit > 0 {
		p.tpm = newBucket(float64(tpmLimit), t)
	}
	return p
}

// estimates reports whether requests need a token estimate (--tpm is set).
func (p *pacer) estimates() bool { return p.tpm != nil }

// cutPause is the least time dispatch pauses when the adaptive controller
// cuts: at most once a round trip, so it costs little.
const cutPause = 100 * time.Millisecond

// waitForCall is what admit returns when only a call ending can let the
// next request go; the dispatcher is woken when one ends.
const waitForCall = time.Second

// admit returns 0 and charges the limits when a request costing cost
// tokens may be sent now, with calling calls in flight; otherwise it
// returns how long to wait before asking again.
func (p *pacer) admit(calling int, cost int64) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, now := p.delay(calling, cost)
	if d > 0 {
		return d
	}
	p.charge(now, cost)
	return 0
}

// ready is admit that charges nothing: how long until admit would let the
// request go (0: now).
func (p *pacer) ready(calling int, cost int64) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, _ := p.delay(calling, cost)
	return d
}

// delay returns how long until a request costing cost tokens may go, with
// calling calls in flight, and the time it asked at.
func (p *pacer) delay(calling int, cost int64) (time.Duration, time.Time) {
	p.calling = calling
	if calling >= p.adapt.conc {
		return waitForCall, time.Time{}
	}
	now := p.now()
	d := p.pausedUntil.Sub(now)
	if now.Before(p.spacingUntil) {
		d = max(d, p.lastSent.Add(p.spacing).Sub(now))
	}
	if p.rpm != nil {
		d = max(d, p.rpm.wait(now, 1))
	}
	if p.tpm != nil {
		d = max(d, p.tpm.wait(now, float64(cost)))
	}
	if p.learned != nil {
		d = max(d, p.learned.wait(now, 1))
	}
	if p.shared != nil {
		d = max(d, p.shared.wait(cost))
	}
	return d, now
}

func (p *pacer) charge(now time.Time, cost int64) {
	p.lastSent = now
	if p.rpm != nil {
		p.rpm.take(now, 1)
	}
	if p.tpm != nil {
		p.tpm.take(now, float64(cost))
	}
	if p.learned != nil {
		p.learned.take(now, 1)
	}
	if p.shared != nil {
		p.shared.take(cost)
	}
}

// done learns from the end of a call sent at sent that was charged cost
// tokens: a result, or a *CallError, with the quota its headers reported.
func (p *pacer) done(sent time.Time, cost int64, res *jobs.Result, ce *CallError, q Quota) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.calling = max(0, p.calling-1) // until the next admit says
	switch {
	case res != nil:
		p.adapt.success(sent, now)
		if p.learned != nil {
			p.learned.setRate(p.adapt.rate)
		}
		if res.Usage.Known {
			p.used(now, cost, res.Usage.TotalTokens)
		}
	case ce != nil && isThrottle(ce):
		p.throttled(sent, now, ce.RetryAfter, p.exhausted(q))
	case ce != nil && ce.StatusCode > 0:
		p.adapt.answered(sent, false) // a 500 is an answer, not a throttle
	}
	p.quota(now, q)
}

// throttled handles a 429 or 503 to a call sent at sent. When the adaptive
// controller cuts, dispatch pauses for every worker until the Retry-After,
// and for at least cutPause, so that when the provider says nothing about
// when to come back, a run whose answers come fast does not retry in a
// tight loop before it has learned a rate. A throttle that does not cut
// is scattered: pausing every worker for it would cost the whole run what
// the provider asked of one request, which waits on its own.
func (p *pacer) throttled(sent, now time.Time, retryAfter time.Duration, exhausted bool) {
	if !p.adapt.throttle(sent, now, exhausted, p.calling) {
		return
	}
	p.pause(now.Add(max(retryAfter, cutPause)))
	if p.publish != nil {
		p.publish(max(retryAfter, cutPause))
	}
	if p.adapt.rate > 0 {
		if p.learned == nil {
			p.learned = newBucket(0, now)
		}
		p.learned.setRate(p.adapt.rate)
	}
}

// exhausted reports whether the x-ratelimit-* headers of an answer say a
// limit is used up: less than one request, or one request's tokens, left.
func (p *pacer) exhausted(q Quota) bool {
	return (q.RemainingRequests >= 0 && q.RemainingRequests < 1) ||
		(q.RemainingTokens >= 0 && float64(q.RemainingTokens) < p.perRequest())
}

// perRequest is how many tokens a request counts for against a
// remaining-tokens header: what recent requests used, or DefaultMaxTokens
// before the first usage.
func (p *pacer) perRequest() float64 {
	if p.tokensPerRequest < 1 {
		return DefaultMaxTokens
	}
	return p.tokensPerRequest
}

// isThrottle reports whether the provider pushed back: 429, or 503.
func isThrottle(ce *CallError) bool {
	return ce.Class == jobs.ClassRateLimited || ce.StatusCode == 503
}

// used reconciles a request's estimate with the tokens it really used.
func (p *pacer) used(now time.Time, cost, tokens int64) {
	if p.tpm != nil {
		p.tpm.give(now, float64(cost-tokens))
	}
	if p.shared != nil {
		p.shared.give(cost - tokens)
	}
	if p.tokensPerRequest == 0 {
		p.tokensPerRequest = float64(tokens)
	} else {
		p.tokensPerRequest += (float64(tokens) - p.tokensPerRequest) / 16
	}
}

func (p *pacer) pause(until time.Time) {
	if until.After(p.pausedUntil) {
		p.pausedUntil = until
	}
}

// pauseUntil pauses dispatch until then: a pause another run of the job
// published.
func (p *pacer) pauseUntil(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pause(until)
}

// quota reads the x-ratelimit-* headers of an answer: a limit used up
// pauses dispatch until it resets; a low one spaces requests out so that
// what is left lasts until then. The latest answer wins: answers arrive in
// about the order the provider counted them.
func (p *pacer) quota(now time.Time, q Quota) {
	if q.RemainingRequests < 0 && q.RemainingTokens < 0 {
		return
	}
	per := p.perRequest()
	g1, ok1 := p.quotaGap(now, q.RemainingRequests, q.LimitRequests, q.ResetRequests, 1)
	g2, ok2 := p.quotaGap(now, q.RemainingTokens, q.LimitTokens, q.ResetTokens, per)
	if !ok1 && !ok2 {
		return
	}
	gap := max(g1, g2)
	if gap <= 0 {
		p.spacing, p.spacingUntil = 0, time.Time{}
		return
	}
	p.spacing = gap
	p.spacingUntil = now.Add(max(q.ResetRequests, q.ResetTokens))
}

// quotaGap reads one limit, remaining of limit units being left until
// reset and a request taking per units. It pauses dispatch when less than
// a request is left, and returns the spacing that makes a low remainder
// last until the reset (0 when plenty is left); ok is false when the
// answer did not tell.
func (p *pacer) quotaGap(now time.Time, remaining, limit int64, reset time.Duration, per float64) (gap time.Duration, ok bool) {
	if remaining < 0 || reset <= 0 {
		return 0, false
	}
	left := float64(remaining) / per // in requests
	low := float64(2 * p.adapt.conc)
	if limit > 0 {
		low = max(low, lowQuota*float64(limit)/per)
	}
	switch {
	case left < 1:
		p.pause(now.Add(reset))
		return 0, true
	case left <= low:
		return time.Duration(float64(reset) / left), true
	}
	return 0, true
}

// state returns the pacing part of a RunState.
func (p *pacer) state() jobs.RunState {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := jobs.RunState{Concurrency: p.adapt.conc, MaxConcurrency: p.adapt.max,
		RPM: p.rpmLimit, TPM: p.tpmLimit, AdaptiveRPM: rpm(p.adapt.rate)}
	if now := p.now(); p.pausedUntil.After(now) {
		s.PausedUntil = p.pausedUntil
	}
	return s
}
