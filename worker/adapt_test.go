package worker

import (
	"testing"
	"time"
)

func TestAdaptiveCut(t *testing.T) {
	a := newAdaptive(64, 1)
	var got []int
	// Every call answers 429. Calls sent before a cut do not cut again:
	// only the first 429 of each round trip does.
	sent := at(0)
	for rtt := 1; rtt <= 8; rtt++ {
		now := at(10 * rtt)
		for i := 0; i < 20; i++ { // a burst of 429s of calls sent in the last round trip
			a.throttle(sent, now)
		}
		got = append(got, a.conc)
		sent = now.Add(time.Millisecond) // the next round trip's calls
	}
	want := []int{32, 16, 8, 4, 2, 1, 1, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("concurrency after each round trip of 429s: %v, want %v", got, want)
		}
	}
	if a.throttle(at(0), at(1000)) {
		t.Error("a 429 of a call sent before the last cut cut again")
	}
}

func TestAdaptiveGrowth(t *testing.T) {
	a := newAdaptive(6, 1)
	a.throttle(at(0), at(1)) // 6 → 3, and a rate of 90 % of nothing: none
	if a.conc != 3 || a.rate != 0 {
		t.Fatalf("after a cut: concurrency %d, rate %v; want 3 and no rate (nothing succeeded)", a.conc, a.rate)
	}
	var got []int
	for i := 0; i < 3+4+5+6+6; i++ {
		a.success(at(2 + i))
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
	// 50 answers a second for two seconds, then a 429.
	for i := 0; i < 100; i++ {
		a.success(at(20 * i))
	}
	if !a.throttle(at(1990), at(2000)) {
		t.Fatal("no cut")
	}
	if a.rate < 0.9*49 || a.rate > 0.9*51 {
		t.Errorf("learned rate %.1f/s, want 90 %% of the 50/s that succeeded in the last second", a.rate)
	}
	learned := a.rate
	// A second's worth of successes at the learned rate adds 1/32 of it.
	for i := 0; i < int(learned)+1; i++ {
		a.success(at(2001 + i))
	}
	if want := learned + max(1, learned/32); a.rate != want {
		t.Errorf("rate after a second's worth of successes: %.2f, want %.2f", a.rate, want)
	}
	// Another 429 a few seconds later, with nothing succeeding in between:
	// the rate halves.
	before := a.rate
	a.throttle(at(9000), at(9000))
	if a.rate != before/2 {
		t.Errorf("rate after a 429 with no recent success: %.2f, want half of %.2f", a.rate, before)
	}
	// It never falls below one request a minute.
	for i := 0; i < 30; i++ {
		a.throttle(at(10_000+i*2000), at(10_001+i*2000))
	}
	if a.rate != minAdaptiveRate {
		t.Errorf("rate after many cuts %v, want the floor %v", a.rate, minAdaptiveRate)
	}
	if got := rpm(a.rate); got != 1 {
		t.Errorf("rpm(floor) = %d, want 1", got)
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
