package worker

import (
	"math"
	"testing"
	"time"
)

// throttleBurst answers n calls sent at sent with 429s at now and
// reports whether any of them cut.
func throttleBurst(a *adaptive, n int, sent, now time.Time) bool {
	cut := false
	for range n {
		cut = a.throttle(sent, now, false, 0) || cut
	}
	return cut
}

func TestAdaptiveCut(t *testing.T) {
	a := newAdaptive(64, 1)
	var got []int
	// Every call answers 429. Calls sent before a cut do not cut again:
	// only the sustained 429s of each round trip do.
	sent := at(0)
	for rtt := 1; rtt <= 8; rtt++ {
		now := at(10 * rtt)
		throttleBurst(&a, 20, sent, now) // a burst of 429s of calls sent in the last round trip
		got = append(got, a.conc)
		sent = now.Add(time.Millisecond) // the next round trip's calls
	}
	want := []int{32, 16, 8, 4, 2, 1, 1, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("concurrency after each round trip of 429s: %v, want %v", got, want)
		}
	}
	if throttleBurst(&a, 20, at(0), at(1000)) {
		t.Error("429s of calls sent before the last cut cut again")
	}
}

func TestAdaptiveMinConcurrency(t *testing.T) {
	a := newAdaptive(16, 4)
	for rtt := 1; rtt <= 6; rtt++ {
		throttleBurst(&a, 16, at(10*rtt-9), at(10*rtt))
	}
	if a.conc != 4 {
		t.Errorf("concurrency after six round trips of 429s: %d, want the minimum 4", a.conc)
	}
	if b := newAdaptive(3, 0); b.min != 1 {
		t.Errorf("minimum of newAdaptive(3, 0) = %d, want 1", b.min)
	}
}

func TestAdaptiveSustainedAt(t *testing.T) {
	// The package comment of these numbers, and docs/rate-limits.md, quote them.
	for n, want := range map[int]int{1: 2, 3: 3, 16: 7, 64: 16} {
		if got := scatteredAt[n]; got != want {
			t.Errorf("scatteredAt[%d] = %d, want %d", n, got, want)
		}
	}
	for n, want := range map[int]int{1: 2, 4: 3, 16: 5, 64: 11} {
		if got := recheckAt[n]; got != want {
			t.Errorf("recheckAt[%d] = %d, want %d", n, got, want)
		}
	}
	for n := 2; n <= windowSize; n++ {
		if scatteredAt[n] < scatteredAt[n-1] || scatteredAt[n] > n+1 || recheckAt[n] > scatteredAt[n] {
			t.Fatalf("scatteredAt = %v, recheckAt = %v: not rising, more than n, or rechecking above sustained",
				scatteredAt, recheckAt)
		}
	}
}

// TestAdaptiveScattered answers calls with a throttle every so often, in
// a steady stream one round trip (as many calls as the concurrency) at a
// time: scattered throttles must not cut.
func TestAdaptiveScattered(t *testing.T) {
	tests := []struct {
		name  string
		every int // a throttle every that many answers
		cuts  bool
	}{
		{"OneIn20", 20, false},
		{"OneIn10", 10, false},
		{"OneIn2", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdaptive(16, 4)
			cuts := 0
			for i := range 10_000 {
				// Calls go 1 ms apart and answer 16 ms after they went.
				sent, now := at(i), at(i+16)
				if i%tt.every == tt.every-1 {
					if a.throttle(sent, now, false, 0) {
						cuts++
					}
				} else {
					a.success(sent, now)
				}
			}
			if got := cuts > 0; got != tt.cuts {
				t.Errorf("a throttle every %d answers: %d cuts, want cuts %v", tt.every, cuts, tt.cuts)
			}
			if !tt.cuts && (a.conc != 16 || a.rate != 0) {
				t.Errorf("after scattered throttles: concurrency %d, rate %v; want 16 and no rate", a.conc, a.rate)
			}
		})
	}
}

// TestAdaptiveMeasure: the answers that follow a sustained cut give the
// share of throttles the run takes for scattered from then on.
func TestAdaptiveMeasure(t *testing.T) {
	tests := []struct {
		name  string
		every int // a throttle every that many answers after the cut; 0 none
		want  float64
	}{
		{"None", 0, recheckShare},
		{"OneIn20", 20, (12 + 2*math.Sqrt(12) + 1) / recheckAnswers},
		{"OneIn16", 16, (16 + 2*4 + 1.0) / recheckAnswers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdaptive(16, 4)
			if !throttleBurst(&a, 3, at(0), at(1)) {
				t.Fatal("three 429s in a row did not cut")
			}
			for i := 1; i <= recheckAnswers; i++ {
				if tt.every > 0 && i%tt.every == 0 {
					a.throttle(at(1+i), at(1+i), false, 0)
				} else {
					a.success(at(1+i), at(1+i))
				}
			}
			if a.scattered != tt.want {
				t.Errorf("share taken for scattered %.4f, want %.4f", a.scattered, tt.want)
			}
		})
	}
	// Measured at the least, 11 throttles among 64 answers are sustained,
	// where 16 were before.
	a := newAdaptive(16, 4)
	throttleBurst(&a, 3, at(0), at(1))
	for i := 1; i <= recheckAnswers; i++ {
		a.success(at(1+i), at(1+i))
	}
	for i := range 53 {
		a.success(at(1000+i), at(1000+i))
	}
	if throttleBurst(&a, 10, at(2000), at(2000)) || !throttleBurst(&a, 1, at(2000), at(2000)) {
		t.Errorf("after a clean measure, the 11th throttle among 64 answers did not cut, or the 10th did")
	}
}

func TestAdaptiveGrowth(t *testing.T) {
	a := newAdaptive(6, 1)
	throttleBurst(&a, 4, at(0), at(1)) // 6 → 3, and a rate of 90 % of nothing: none
	if a.conc != 3 || a.rate != 0 {
		t.Fatalf("after a cut: concurrency %d, rate %v; want 3 and no rate (nothing succeeded)", a.conc, a.rate)
	}
	var got []int
	for i := 0; i < 3+4+5+6+6; i++ {
		a.success(at(2+i), at(2+i))
		got = append(got, a.conc)
	}
	// +1 per window of as many successes as the concurrency, up to 6.
	want := []int{3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("concurrency after each success: %v, want %v", got, want)
		}
	}
}

func TestAdaptiveRate(t *testing.T) {
	a := newAdaptive(64, 1)
	// 50 answers a second for two seconds, then 429s: 16 among the last
	// 64 answers are sustained.
	for i := 0; i < 100; i++ {
		a.success(at(20*i), at(20*i))
	}
	if throttleBurst(&a, 15, at(1990), at(2000)) {
		t.Fatal("15 429s among 64 answers cut")
	}
	if !throttleBurst(&a, 1, at(1990), at(2000)) {
		t.Fatal("no cut")
	}
	if a.rate < 0.9*49 || a.rate > 0.9*51 {
		t.Errorf("learned rate %.1f/s, want 90 %% of the 50/s that succeeded in the last second", a.rate)
	}
	if a.ceiling < 49 || a.ceiling > 51 {
		t.Errorf("ceiling %.1f/s, want the 50/s that succeeded in the last second", a.ceiling)
	}
	learned := a.rate
	// A second's worth of successes at the learned rate adds 1/32 of it.
	for i := 0; i < int(learned)+1; i++ {
		a.success(at(2001+i), at(2001+i))
	}
	if want := learned + max(1, learned/32); a.rate != want {
		t.Errorf("rate after a second's worth of successes: %.2f, want %.2f", a.rate, want)
	}
	// Sustained 429s a few seconds later, with nothing succeeding in
	// between: the rate halves.
	before := a.rate
	throttleBurst(&a, 20, at(9000), at(9000))
	if a.rate != before/2 {
		t.Errorf("rate after 429s with no recent success: %.2f, want half of %.2f", a.rate, before)
	}
	// It never falls below one request a minute.
	for i := 0; i < 30; i++ {
		throttleBurst(&a, 4, at(10_000+i*2000), at(10_001+i*2000))
	}
	if a.rate != minAdaptiveRate {
		t.Errorf("rate after many cuts %v, want the floor %v", a.rate, minAdaptiveRate)
	}
	if got := rpm(a.rate); got != 1 {
		t.Errorf("rpm(floor) = %d, want 1", got)
	}
}

// TestAdaptiveProbe: once the limit is known, a single throttle ends a
// probe above it (the rate drops, the concurrency stays), while one below
// it is scattered.
func TestAdaptiveProbe(t *testing.T) {
	a := newAdaptive(64, 1)
	ms := 0
	successes := func(n, every int) {
		for range n {
			ms += every
			a.success(at(ms), at(ms))
		}
	}
	successes(100, 20) // 50 a second
	throttleBurst(&a, 16, at(ms), at(ms))
	ceiling := a.ceiling
	successes(20, 20)
	if a.throttle(at(ms), at(ms), false, 0) || a.rate > a.ceiling {
		t.Fatalf("a throttle below the ceiling (rate %.1f, ceiling %.1f) cut", a.rate, a.ceiling)
	}
	for a.rate <= a.ceiling { // the probe grows the rate above the ceiling
		successes(1, 20)
	}
	successes(60, 16) // 62.5 a second get through for a while
	before, conc := a.rate, a.conc
	if !a.throttle(at(ms), at(ms), false, 0) {
		t.Fatalf("a throttle above the ceiling (rate %.1f, ceiling %.1f) did not cut", a.rate, a.ceiling)
	}
	if a.conc != conc || a.rate >= before || a.ceiling < ceiling {
		t.Errorf("after the probe's cut: concurrency %d (was %d), rate %.1f (was %.1f), ceiling %.1f (was %.1f); "+
			"want the concurrency kept, a lower rate, the ceiling not lower", a.conc, conc, a.rate, before, a.ceiling, ceiling)
	}
}

func TestRateMeter(t *testing.T) {
	var m rateMeter
	if got, ok := m.perSecond(at(0)); got != 0 || !ok {
		t.Errorf("no events: %v, %v; want 0, known", got, ok)
	}
	m.add(at(0))
	m.add(at(10))
	if _, ok := m.perSecond(at(20)); ok {
		t.Error("two events in 20ms: a rate, want too short a history")
	}
	early := m
	if got, ok := early.perSecond(at(500)); got != 4 || !ok {
		t.Errorf("two events in the first 500ms: %v, %v; want 4/s", got, ok)
	}
	for i := 2; i < 10; i++ {
		m.add(at(100 * i))
	}
	if got, _ := m.perSecond(at(1000)); got != 10 {
		t.Errorf("10 events in the last second: %v", got)
	}
	// The oldest slot counts for the part of it still in the last second,
	// as if its events were spread evenly over it.
	if got, _ := m.perSecond(at(1450)); got != 5.5 {
		t.Errorf("half a second later: %v, want 5 and half of the slot at 400ms", got)
	}
	if got, ok := m.perSecond(at(60_000)); got != 0 || !ok {
		t.Errorf("a minute later: %v, %v; want 0", got, ok)
	}
	m.add(at(60_000))
	if got, ok := m.perSecond(at(60_300)); got != 1/0.3 || !ok {
		t.Errorf("one event 300ms ago after a quiet minute: %v, %v; want 3.3/s", got, ok)
	}
}
