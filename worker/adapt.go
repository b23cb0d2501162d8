package worker

import (
	"math"
	"time"
)

// minAdaptiveRate is the lowest dispatch rate, in requests per second, the
// adaptive controller goes down to: one request a minute.
const minAdaptiveRate = 1.0 / 60

// adaptive is the run's AIMD controller: additive increase, multiplicative
// decrease, as TCP does with its window. It sets the effective concurrency
// and, once the provider has pushed back, a dispatch rate.
//
// The concurrency alone cannot hold a rate limit when answers are quick (at
// 1 ms a call, one call in flight is 1,000 requests a second), so a
// throttle also sets a rate: 90 % of the rate of successful answers over
// the last second, the rate the provider was just seen to accept.
//
// A throttle cuts only if its call was sent after the last cut: the calls
// that were in flight when the controller cut answer from before the cut,
// and a burst of their 429s must not cut again and again. So there is at
// most one cut per round trip.
type adaptive struct {
	max     int
	min     int // the least conc goes down to
	conc    int
	succ    int       // successes since conc last changed
	lastCut time.Time // zero before the first cut
	// rate is the learned dispatch rate in requests per second; 0 until
	// the first throttle.
	rate     float64
	rateSucc int // successes since rate last changed
	probes   int // rate increases since the last cut
	meter    rateMeter
}

func newAdaptive(maxConc, minConc int) adaptive {
	return adaptive{max: maxConc, min: min(max(1, minConc), maxConc), conc: maxConc}
}

// success counts a successful answer: each window of as many successes as
// the concurrency (about one round trip) adds one to it, up to max. Each
// second's worth of successes at the learned rate adds 1/32 of it (at
// least one request a second), and twice as much as the time before, up
// to doubling it, while no throttle comes: close to the limit just after a
// cut it probes gently, and a rate learned too low (from the first
// answers of a run) grows back within seconds.
func (a *adaptive) success(now time.Time) {
	a.meter.add(now)
	if a.succ++; a.succ >= a.conc {
		a.succ = 0
		a.conc = min(a.max, a.conc+1)
	}
	if a.rate > 0 {
		if a.rateSucc++; float64(a.rateSucc) >= a.rate {
			step := max(1, a.rate/32) * float64(uint(1)<<min(a.probes, 10))
			a.rate += min(step, a.rate)
			a.rateSucc = 0
			a.probes++
		}
	}
}

// throttle handles a 429 or 503 answer to a call sent at sent, and reports
// whether it cut: the concurrency halves (not below 1) and the rate
// becomes 90 % of the lower of the current rate and the rate of successes
// over the last second (half the current rate when nothing succeeded).
func (a *adaptive) throttle(sent, now time.Time) bool {
	if !sent.After(a.lastCut) {
		return false
	}
	a.lastCut = now
	a.conc = max(a.min, a.conc/2)
	a.succ = 0
	seen, ok := a.meter.perSecond(now)
	switch {
	case !ok:
		a.rate *= 0.9 // too short a history to measure: a gentle cut
	case seen > 0 && a.rate > 0:
		a.rate = 0.9 * min(a.rate, seen)
	case seen > 0:
		a.rate = 0.9 * seen
	default: // nothing succeeded for a second
		a.rate /= 2
	}
	if a.rate > 0 {
		a.rate = max(a.rate, minAdaptiveRate)
	}
	a.rateSucc, a.probes = 0, 0
	return true
}

// meterSlot is the resolution of a rateMeter.
const meterSlot = 100 * time.Millisecond

// meterHistory is the shortest history a rateMeter measures a rate over.
// Over less, it knows too little: the answers of a run's first few
// milliseconds are a provider's burst, and those in flight are not counted
// yet.
const meterHistory = 250 * time.Millisecond

// rateMeter counts events over the last second in slots of 100 ms: the
// current one, the nine before it, and the one before those, which counts
// for the part of it that is less than a second old. Events that started
// less than a second ago, after a quiet second, are a rate over the time
// since the first of them: ten answers in the first 250 ms of a run are
// forty a second, not ten.
type rateMeter struct {
	slots [11]int
	head  int64     // the slot number (time / meterSlot) of the current slot
	since time.Time // the first event after a quiet second
}

// advance makes now's slot the current one, emptying the slots it passes.
func (m *rateMeter) advance(now time.Time) {
	slot := now.UnixNano() / int64(meterSlot)
	if slot <= m.head {
		return
	}
	n := int64(len(m.slots))
	if slot-m.head >= n {
		m.slots = [11]int{}
	} else {
		for s := m.head + 1; s <= slot; s++ {
			m.slots[s%n] = 0
		}
	}
	m.head = slot
}

func (m *rateMeter) add(now time.Time) {
	if n, _ := m.perSecond(now); n == 0 {
		m.since = now
	}
	m.slots[m.head%int64(len(m.slots))]++
}

// perSecond returns the rate of events over the last second; ok is false
// when the events started less than meterHistory ago.
func (m *rateMeter) perSecond(now time.Time) (rate float64, ok bool) {
	m.advance(now)
	n := int64(len(m.slots))
	sum := 0.0
	for i := int64(0); i < n-1; i++ {
		sum += float64(m.slots[(m.head-i)%n])
	}
	elapsed := float64(now.UnixNano()%int64(meterSlot)) / float64(meterSlot)
	sum += float64(m.slots[(m.head+1)%n]) * (1 - elapsed)
	if sum == 0 {
		return 0, true
	}
	if d := now.Sub(m.since); d < time.Second {
		return sum / max(d, meterHistory).Seconds(), d >= meterHistory
	}
	return sum, true
}

// rpm converts a rate per second to whole requests per minute, rounding up
// so that a learned rate never shows as 0.
func rpm(perSecond float64) int {
	if perSecond <= 0 {
		return 0
	}
	return int(math.Ceil(perSecond * 60))
}
