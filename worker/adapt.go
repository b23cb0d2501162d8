package worker

import (
	"math"
	"math/bits"
	"time"
)

// minAdaptiveRate is the lowest dispatch rate, in requests per second, the
// adaptive controller goes down to: one request a minute.
const minAdaptiveRate = 1.0 / 60

// adaptive is the run's AIMD controller: additive increase, multiplicative
// decrease, as TCP does with its window. It sets the effective concurrency
// and, once the provider has pushed back, a dispatch rate.
//
// Not every 429 or 503 is the provider pushing back. A busy provider
// refuses a few percent of calls at random whatever the rate, and cutting
// on each of them collapses a run that nothing limits; a limit refuses a
// share of the calls that grows with the rate. So a throttle cuts only
// when it is one of a sustained run of them: when the throttles among the
// recent answers are more than scattered ones would give (see scatteredAt),
// or when the controller is probing above the rate at which it last found
// the limit (see throttle). Any other throttle delays only its own request.
//
// The concurrency alone cannot hold a rate limit when answers are quick (at
// 1 ms a call, one call in flight is 1,000 requests a second), so a cut
// also sets a rate: 90 % of the rate of successful answers over the last
// second, the rate the provider was just seen to accept.
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
	// the first cut.
	rate     float64
	rateSucc int // successes since rate last changed
	probes   int // rate increases since the last cut
	meter    rateMeter
	// recent holds the latest answers to the calls sent since the last
	// sustained cut (and none sent before the last cut), and sustainedCut
	// says whether the last cut was sustained.
	recent       answerWindow
	sustainedCut bool
	// scattered is the share of throttles the controller takes for
	// scattered ones, and sustainedAt[n] the least number of throttles
	// among n answers that is more (see measure).
	scattered   float64
	sustainedAt [windowSize + 1]int
	// ceiling is the rate of successes the provider was seen to accept
	// when the controller last found its limit (0 before): above it, the
	// rate is a probe, and a throttle ends it.
	ceiling float64
}

func newAdaptive(maxConc, minConc int) adaptive {
	return adaptive{max: maxConc, min: min(max(1, minConc), maxConc), conc: maxConc,
		scattered: scatteredShare, sustainedAt: scatteredAt}
}

// success counts a successful answer to a call sent at sent: each window
// of as many successes as the concurrency (about one round trip) adds one
// to the concurrency, up to max. Each second's worth of successes at the
// learned rate adds 1/32 of it (at least one request a second), and twice
// as much as the time before, up to doubling it, while no cut comes: close
// to the limit just after a cut it probes gently, and a rate learned too
// low (from the first answers of a run) grows back within seconds.
func (a *adaptive) success(sent, now time.Time) {
	a.meter.add(now)
	a.answered(sent, false)
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

// answered counts an answer to a call sent at sent, throttled or not, in
// the window of recent answers; an answer to a call sent before the last
// cut tells nothing about the rate since.
func (a *adaptive) answered(sent time.Time, throttled bool) {
	if !sent.After(a.lastCut) {
		return
	}
	a.recent.add(throttled)
	if a.sustainedCut && a.recent.total == recheckAnswers {
		a.measure()
	}
}

// measure takes the share of throttles among the recheckAnswers answers
// that followed a sustained cut without another one, when the run was
// under the limit, for the share of scattered throttles. A provider that
// throttles nothing at random then has a limit it is exceeded by (after a
// cut that learned too high a rate, or when it lowers the limit) found at
// a smaller share than scatteredShare, while one that does keeps its
// scattered throttles from cutting. The share is taken high (plus two
// standard deviations and one throttle), and kept between recheckShare and
// scatteredShare.
func (a *adaptive) measure() {
	k := float64(a.recent.throttles)
	share := (k + 2*math.Sqrt(k) + 1) / float64(a.recent.total)
	share = min(max(share, recheckShare), scatteredShare)
	if share != a.scattered {
		a.scattered, a.sustainedAt = share, leastUnlikelyTable(share)
	}
}

// throttle handles a 429 or 503 answer to a call sent at sent, and reports
// whether it cut; exhausted says the answer's x-ratelimit-* headers call
// the limit used up, inflight how many calls are in flight. It cuts only
// if the call was sent after the last cut, and then when
//
//   - the throttle is sustained: the limit is used up, the recent
//     throttles are more than scattered ones would give, or more than a
//     few come among the first answers after a sustained cut. The
//     concurrency halves (not below min) and the ceiling becomes the rate
//     the provider accepted;
//   - or the learned rate is above the ceiling: a probe found the limit
//     again, and only the rate comes down. The ceiling stays: lowering it
//     to what a probe's cut saw would let scattered throttles ratchet it
//     down cut after cut.
//
// Either way the rate becomes 90 % of the lower of the current rate and
// the rate of successes over the last second (half the current rate when
// nothing succeeded).
func (a *adaptive) throttle(sent, now time.Time, exhausted bool, inflight int) bool {
	a.answered(sent, true)
	if !sent.After(a.lastCut) {
		return false
	}
	// Throttles that keep coming right after a sustained cut say it was
	// not deep enough.
	sustained := exhausted || a.recent.over(&a.sustainedAt, inflight) ||
		(a.sustainedCut && a.recent.total <= recheckAnswers && a.recent.over(&recheckAt, inflight))
	if !sustained && (a.ceiling == 0 || a.rate <= a.ceiling) {
		return false // scattered: only this request waits
	}
	a.lastCut, a.sustainedCut = now, sustained
	accepted := a.cutRate(now)
	if sustained {
		// The throttles that made this cut must not make the next one.
		a.recent = answerWindow{}
		a.conc = max(a.min, a.conc/2)
		a.succ = 0
		a.ceiling = accepted
	}
	return true
}

// cutRate sets the rate after a cut and returns the rate the provider was
// seen to accept.
func (a *adaptive) cutRate(now time.Time) (accepted float64) {
	seen, ok := a.meter.perSecond(now)
	switch {
	case !ok && a.rate == 0:
		// Too short a history to know what the provider accepts, but
		// enough to pace the next round at less than it did (seen counts
		// the successes as if over meterHistory); the ceiling stays
		// unknown, and the recheck after the cut corrects a rate too high.
		a.rate = 0.9 * seen
	case !ok: // too short a history to measure: a gentle cut
		accepted = a.rate
		a.rate *= 0.9
	case seen > 0 && a.ceiling > 0:
		accepted = min(a.rate, seen)
		a.rate = 0.9 * accepted
	case seen > 0: // the rate, if any, is a guess from a short history
		accepted = seen
		a.rate = 0.9 * seen
	default: // nothing succeeded for a second
		a.rate /= 2
		accepted = a.rate
	}
	if a.rate > 0 {
		a.rate = max(a.rate, minAdaptiveRate)
	}
	a.rateSucc, a.probes = 0, 0
	return accepted
}

// windowSize is how many recent answers the controller weighs, and
// recheckAnswers how many answers after a sustained cut it holds them to
// recheckAt.
const (
	windowSize     = 64
	recheckAnswers = 4 * windowSize
)

// answerWindow remembers which of the last windowSize answers were
// throttled, as bits (the newest lowest).
type answerWindow struct {
	throttled uint64
	n         int // answers held, at most windowSize
	// total and throttles count the answers and the throttles added.
	total, throttles int
}

func (w *answerWindow) add(throttled bool) {
	w.throttled <<= 1
	if throttled {
		w.throttled |= 1
		w.throttles++
	}
	w.total++
	w.n = min(w.total, windowSize)
}

// over reports whether the window holds at least least[n] throttles,
// where n counts its answers and the calls in flight (up to windowSize). A
// throttle comes back faster than an answer, so that the first answers to
// a burst of calls are its throttles: the calls still in flight count as
// answers that are not throttles, or a few scattered throttles among the
// first calls of a run would pass for a limit.
func (w *answerWindow) over(least *[windowSize + 1]int, inflight int) bool {
	n := min(w.n+max(inflight, 0), windowSize)
	return w.n > 0 && bits.OnesCount64(w.throttled) >= least[n]
}

// Throttles count as sustained when scattered throttles of a share of the
// calls, drawn independently, would give as many among as many answers
// at most once in 1/unlikely windows. Until a run has measured its own
// share (see adaptive.measure), up to scatteredShare is scattered: then
// sustained is three in a row, 7 of 16, 16 of 64, and throttles of a few
// percent cut about never (five percent reach 16 of 64 less than once in
// ten million windows), while a limit the run exceeds shows within a few
// answers. Among the first recheckAnswers answers after
// a sustained cut, when the run should be under the limit, more than
// recheckShare is sustained: 3 of 4, 5 of 16, 11 of 64. A cut may learn too
// high a rate (the successes of the last second include what the
// provider's bucket had saved up), and the bucket can hide that for a while
// after it; with this check the run does not stay for seconds above the
// limit at a share of throttles that would pass for scattered.
const (
	scatteredShare = 0.1
	recheckShare   = 0.05
	unlikely       = 1e-3
)

// scatteredAt[n] and recheckAt[n] are the least numbers of throttles
// among n answers that count as sustained.
var (
	scatteredAt = leastUnlikelyTable(scatteredShare)
	recheckAt   = leastUnlikelyTable(recheckShare)
)

func leastUnlikelyTable(p float64) (k [windowSize + 1]int) {
	for n := 1; n <= windowSize; n++ {
		k[n] = leastUnlikely(n, p, unlikely)
	}
	return k
}

// leastUnlikely returns the least k for which k or more successes in n
// trials of probability p happen with a probability of at most odds (n+1
// if none does); odds is below 1.
func leastUnlikely(n int, p, odds float64) int {
	tail := 0.0 // P(X ≥ k), summed from k = n down
	for k := n; k >= 0; k-- {
		tail += binomial(n, k) * math.Pow(p, float64(k)) * math.Pow(1-p, float64(n-k))
		// The margin keeps rounding from making a tail of exactly odds
		// (three in a row at one in ten) count as more.
		if tail > odds*(1+1e-9) {
			return k + 1
		}
	}
	return 0
}

// binomial returns n choose k.
func binomial(n, k int) float64 {
	c := 1.0
	for i := 1; i <= k; i++ {
		c = c * float64(n-k+i) / float64(i)
	}
	return c
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
