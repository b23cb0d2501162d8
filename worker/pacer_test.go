package worker

import (
	"cmp"
	"github.com/llmbatch/llmbatch/internal/testclock"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

func newTestPacer(conc, rpm, tpm int) (*pacer, *testclock.Clock) {
	c := testclock.New(tz)
	return newPacer(conc, 1, rpm, tpm, c.Now), c
}

func throttled(status int, retryAfter time.Duration) *CallError {
	return &CallError{Failure: jobs.Failure{Class: jobs.ClassForStatus(status), StatusCode: status}, RetryAfter: retryAfter}
}

func succeeded(tokens int64) *jobs.Result {
	return &jobs.Result{Usage: jobs.Usage{Known: tokens >= 0, TotalTokens: max(0, tokens)}}
}

// throttleN answers n calls sent at sent with status and retryAfter.
func throttleN(p *pacer, n int, sent time.Time, status int, retryAfter time.Duration) {
	for range n {
		p.done(sent, 0, nil, throttled(status, retryAfter), noQuota)
	}
}

func TestPacerConcurrency(t *testing.T) {
	p, clock := newTestPacer(4, 0, 0)
	if d := p.admit(3, 0); d != 0 {
		t.Fatalf("3 of 4 calling: wait %v, want 0", d)
	}
	if d := p.admit(4, 0); d != waitForCall {
		t.Fatalf("4 of 4 calling: wait %v, want a call to end", d)
	}
	throttleN(p, 4, tz, 503, 0) // four in a row: sustained
	if s := p.state(); s.Concurrency != 2 || s.MaxConcurrency != 4 || !s.PausedUntil.Equal(tz.Add(cutPause)) {
		t.Errorf("after four 503s: %+v, want concurrency 2 of 4 and the pause of a cut", s)
	}
	if d := p.admit(1, 0); d != cutPause {
		t.Errorf("just after a cut: wait %v, want %v", d, cutPause)
	}
	clock.Advance(cutPause)
	if d := p.admit(2, 0); d != waitForCall {
		t.Errorf("2 calling at concurrency 2: wait %v, want a call to end", d)
	}
	clock.Advance(time.Millisecond)
	sent := clock.Now()
	for range 4 {
		p.done(sent, 0, nil, throttled(500, 0), noQuota)
		p.done(sent, 0, nil, &CallError{Failure: jobs.Failure{Class: jobs.ClassTimeout}}, noQuota)
	}
	if s := p.state(); s.Concurrency != 2 {
		t.Errorf("500s and timeouts changed the concurrency to %d", s.Concurrency)
	}
}

func TestPacerRPM(t *testing.T) {
	p, clock := newTestPacer(64, 600, 0) // one request per 100 ms, two saved up
	for i := 0; i < 2; i++ {
		if d := p.admit(i, 0); d != 0 {
			t.Fatalf("request %d waits %v", i+1, d)
		}
	}
	if d := p.admit(2, 0); d != 100*time.Millisecond {
		t.Errorf("third request waits %v, want 100ms", d)
	}
	clock.Advance(100 * time.Millisecond)
	if d := p.admit(2, 0); d != 0 {
		t.Errorf("100ms later: wait %v, want 0", d)
	}
	if s := p.state(); s.RPM != 600 || s.TPM != 0 {
		t.Errorf("state %+v, want rpm 600, no tpm", s)
	}
}

func TestPacerTPMReconciles(t *testing.T) {
	p, clock := newTestPacer(64, 0, 60_000) // 1,000 tokens a second, 20 saved up
	if d := p.admit(0, 1010); d != 0 {
		t.Fatalf("first request waits %v", d)
	}
	if d := p.admit(1, 1010); d != time.Second {
		t.Errorf("second request waits %v, want 1s for the first one's estimate", d)
	}
	clock.Advance(10 * time.Millisecond)
	p.done(tz, 1010, succeeded(20), nil, noQuota) // it used 20 tokens: 990 come back
	if d := p.admit(0, 1010); d != 0 {
		t.Errorf("after the refund: wait %v, want 0", d)
	}
	clock.Advance(time.Millisecond)
	p.done(tz, 1010, succeeded(-1), nil, noQuota) // no usage reported: the estimate stays charged
	if d := p.admit(0, 1010); d < time.Second {
		t.Errorf("after an answer without usage: wait %v, want the estimate kept (about 1.01s)", d)
	}
}

func TestPacerRetryAfter(t *testing.T) {
	t.Run("Scattered", func(t *testing.T) {
		// A 429 among successes delays its own request (the runner gives it
		// a not-before time), not the others.
		p, clock := newTestPacer(8, 0, 0)
		for i := range 40 {
			clock.Advance(10 * time.Millisecond)
			if i%20 == 19 {
				p.done(clock.Now(), 0, nil, throttled(429, 2*time.Second), noQuota)
			} else {
				p.done(clock.Now(), 0, succeeded(10), nil, noQuota)
			}
		}
		if d := p.admit(0, 0); d != 0 {
			t.Errorf("after scattered 429s with Retry-After 2s: wait %v, want 0", d)
		}
		if s := p.state(); !s.PausedUntil.IsZero() || s.Concurrency != 8 || s.AdaptiveRPM != 0 {
			t.Errorf("state %+v, want no pause, concurrency 8, nothing learned", s)
		}
	})
	t.Run("LimitUsedUp", func(t *testing.T) {
		// A 429 whose headers say the limit is used up is sustained alone.
		p, _ := newTestPacer(8, 0, 0)
		for range 20 {
			p.done(tz, 0, succeeded(10), nil, noQuota)
		}
		q := noQuota
		q.RemainingRequests, q.ResetRequests = 0, 300*time.Millisecond
		p.done(tz, 0, nil, throttled(429, time.Second), q)
		if s := p.state(); s.Concurrency != 4 || !s.PausedUntil.Equal(tz.Add(time.Second)) {
			t.Errorf("state %+v, want concurrency 4 and paused for the Retry-After", s)
		}
	})
	t.Run("Sustained", func(t *testing.T) {
		p, clock := newTestPacer(8, 0, 0)
		throttleN(p, 4, tz, 429, 2*time.Second)
		if d := p.admit(0, 0); d != 2*time.Second {
			t.Errorf("after four 429s with Retry-After 2s: wait %v, want 2s", d)
		}
		if s := p.state(); !s.PausedUntil.Equal(tz.Add(2*time.Second)) || s.Concurrency != 4 {
			t.Errorf("state %+v, want paused 2s and concurrency 4", s)
		}
		// The next cut, with a shorter Retry-After, does not shorten the pause.
		clock.Advance(500 * time.Millisecond)
		throttleN(p, 4, clock.Now(), 503, 100*time.Millisecond)
		if s := p.state(); s.Concurrency != 2 {
			t.Fatalf("state %+v, want a second cut to concurrency 2", s)
		}
		if d := p.admit(0, 0); d != 1500*time.Millisecond {
			t.Errorf("wait %v, want the 1.5s left of the first pause", d)
		}
		clock.Advance(1500 * time.Millisecond)
		if d := p.admit(0, 0); d != 0 {
			t.Errorf("after the pause: wait %v", d)
		}
		if s := p.state(); !s.PausedUntil.IsZero() {
			t.Errorf("state %+v, want no pause once it is over", s)
		}
	})
}

func TestPacerQuotaHeaders(t *testing.T) {
	t.Run("Exhausted", func(t *testing.T) {
		p, _ := newTestPacer(8, 0, 0)
		q := noQuota
		q.RemainingRequests, q.ResetRequests = 0, 300*time.Millisecond
		p.done(tz, 0, succeeded(10), nil, q)
		if d := p.admit(0, 0); d != 300*time.Millisecond {
			t.Errorf("no request left: wait %v, want the 300ms until the reset", d)
		}
	})
	t.Run("Low", func(t *testing.T) {
		p, clock := newTestPacer(2, 0, 0)
		q := noQuota
		q.LimitRequests, q.RemainingRequests, q.ResetRequests = 100, 5, time.Second
		p.done(tz, 0, succeeded(10), nil, q)
		if d := p.admit(0, 0); d != 0 {
			t.Fatalf("wait %v, want 0", d)
		}
		if d := p.admit(1, 0); d != 200*time.Millisecond {
			t.Errorf("5 left for a second: wait %v, want them spaced 200ms apart", d)
		}
		clock.Advance(200 * time.Millisecond)
		q.RemainingRequests = 90 // plenty again
		p.done(tz, 0, succeeded(10), nil, q)
		if d := p.admit(0, 0); d != 0 {
			t.Fatal(d)
		}
		if d := p.admit(1, 0); d != 0 {
			t.Errorf("plenty left: wait %v, want no spacing", d)
		}
	})
	t.Run("Tokens", func(t *testing.T) {
		p, _ := newTestPacer(8, 0, 0)
		p.done(tz, 0, succeeded(1000), nil, noQuota) // requests use about 1,000 tokens
		q := noQuota
		q.RemainingTokens, q.ResetTokens = 500, 6*time.Second
		p.done(tz, 0, succeeded(1000), nil, q)
		if d := p.admit(0, 0); d != 6*time.Second {
			t.Errorf("less than a request's tokens left: wait %v, want the 6s until the reset", d)
		}
	})
	t.Run("None", func(t *testing.T) {
		p, _ := newTestPacer(8, 0, 0)
		p.done(tz, 0, succeeded(10), nil, noQuota)
		if d := p.admit(0, 0); d != 0 {
			t.Errorf("no headers: wait %v", d)
		}
	})
}

func TestPacerLearnsRate(t *testing.T) {
	p, clock := newTestPacer(64, 0, 0)
	for i := 0; i < 150; i++ { // 100 answers a second for 1.5 s
		clock.Advance(10 * time.Millisecond)
		p.done(clock.Now(), 0, succeeded(10), nil, noQuota)
	}
	throttleN(p, 16, clock.Now(), 429, 0) // 16 of the last 64 answers: sustained
	s := p.state()
	if s.AdaptiveRPM < 0.9*60*97 || s.AdaptiveRPM > 0.9*60*103 {
		t.Fatalf("learned %d rpm, want about 90 %% of 6,000", s.AdaptiveRPM)
	}
	// After the pause of the cut, the learned rate spaces requests out:
	// about 11 ms apart, once the two saved up are spent.
	clock.Advance(cutPause)
	for i := 0; i < 2; i++ {
		if d := p.admit(i, 0); d != 0 {
			t.Fatal(d)
		}
	}
	if d := p.admit(2, 0); d < 10*time.Millisecond || d > 12*time.Millisecond {
		t.Errorf("next request waits %v, want about 11ms", d)
	}
}

// BenchmarkPacer is the pacing cost of one request on the hot path
// without limits: admit, then the answer's done.
func BenchmarkPacer(b *testing.B) {
	p := newPacer(64, 1, 0, 0, time.Now)
	res := succeeded(10)
	b.ReportAllocs()
	for b.Loop() {
		if d := p.admit(0, 0); d != 0 {
			b.Fatal(d)
		}
		p.done(time.Now(), 0, res, nil, noQuota)
	}
}

// simProvider is a provider for simulations of a run: an optional rate
// limit (a token bucket, of a second's worth unless burst says), and throttles and 500s
// scattered at random, drawn from a seeded PRNG. Throttles and 500s answer
// at once, as a gateway does; successes after a latency between lo and hi.
type simProvider struct {
	limit             float64 // accepted calls a second; 0 for none
	burst             float64 // calls the limit accepts at once
	throttles, errors float64 // shares of scattered 429s and 500s
	lo, hi            time.Duration
	rng               *rand.Rand
	tokens            float64
	last              time.Time
}

// call decides the answer to a call sent at now and when it arrives.
func (s *simProvider) call(now time.Time) (status int, after time.Duration) {
	if s.limit > 0 {
		s.tokens = min(cmp.Or(s.burst, s.limit), s.tokens+now.Sub(s.last).Seconds()*s.limit)
		s.last = now
		if s.tokens < 1 {
			return 429, 0
		}
		s.tokens--
	}
	switch x := s.rng.Float64(); {
	case x < s.throttles:
		return 429, 0
	case x < s.throttles+s.errors:
		return 500, 0
	}
	return 200, s.lo + time.Duration(s.rng.Int64N(int64(s.hi-s.lo)+1))
}

type simCall struct {
	sent, end time.Time
	status    int
}

// simRun is what a simulated run did after its first settle.
type simRun struct {
	succeeded, calls, throttled int
	lowest                      int // the lowest effective concurrency
	ceiling                     float64
	per                         time.Duration // the time succeeded counts over
}

func (r simRun) rate() float64  { return float64(r.succeeded) / r.per.Seconds() }
func (r simRun) share() float64 { return float64(r.throttled) / float64(max(1, r.calls)) }

// simulate runs a pacer with concurrency conc (minimum min) against prov
// for d of simulated time, with always a request ready to send, as the
// dispatcher does: admit while the pacer lets requests go, then wait for
// the first of the next answer and the pacer's wait.
func simulate(prov *simProvider, conc, minConc int, settle, d time.Duration) simRun {
	clock := testclock.New(tz)
	p := newPacer(conc, minConc, 0, 0, clock.Now)
	prov.last, prov.tokens = tz, cmp.Or(prov.burst, prov.limit)
	var flight []simCall // in flight, in no order
	run := simRun{lowest: conc, per: d - settle}
	for clock.Now().Before(tz.Add(d)) {
		now := clock.Now()
		wait := p.admit(len(flight), 0)
		for ; wait == 0; wait = p.admit(len(flight), 0) {
			status, after := prov.call(now)
			flight = append(flight, simCall{sent: now, end: now.Add(after), status: status})
		}
		next := now.Add(wait)
		for _, c := range flight {
			if c.end.Before(next) {
				next = c.end
			}
		}
		clock.Set(next)
		settled := next.After(tz.Add(settle))
		kept := flight[:0]
		for _, c := range flight {
			if c.end.After(next) {
				kept = append(kept, c)
				continue
			}
			switch c.status {
			case 200:
				p.done(c.sent, 0, succeeded(10), nil, noQuota)
				if settled {
					run.succeeded++
				}
			default:
				p.done(c.sent, 0, nil, throttled(c.status, 50*time.Millisecond), noQuota)
				if settled && c.status == 429 {
					run.throttled++
				}
			}
			if settled {
				run.calls++
			}
			run.lowest = min(run.lowest, p.adapt.conc)
		}
		flight = kept
	}
	run.ceiling = p.adapt.ceiling
	return run
}

// TestPacerSimulated runs the pacer against simulated providers: with
// throttles scattered at random the run keeps its pace; against a limit it
// settles at the limit with few 429s.
func TestPacerSimulated(t *testing.T) {
	slow := func(throttles, errors float64) *simProvider {
		return &simProvider{throttles: throttles, errors: errors, lo: 300 * time.Millisecond, hi: 800 * time.Millisecond}
	}
	fast := func(limit, throttles, errors float64) *simProvider {
		return &simProvider{limit: limit, throttles: throttles, errors: errors, lo: time.Millisecond, hi: 3 * time.Millisecond}
	}
	tests := []struct {
		name        string
		prov, clean *simProvider // clean: the same without scattered faults, for the pace to compare with
		conc, min   int
		d           time.Duration
		// pace is the least share of the clean run's successes; lowest the
		// least effective concurrency; share the most 429s of all calls.
		pace   float64
		lowest int
		share  float64
	}{
		{"Scattered429Slow", slow(0.05, 0), slow(0, 0), 16, 4, time.Minute, 0.95, 16, 0.06},
		{"ScatteredFast", fast(0, 0.07, 0.03), fast(0, 0, 0), 32, 8, 10 * time.Second, 0.95, 32, 0.08},
		{"Limit", fast(50, 0, 0), nil, 64, 16, time.Minute, 0.95, 16, 0.02},
		{"LimitSlow", &simProvider{limit: 50, lo: 500 * time.Millisecond, hi: 500 * time.Millisecond}, nil, 64, 16, time.Minute, 0.95, 16, 0.02},
		{"LimitAndScattered", fast(50, 0.05, 0), nil, 64, 16, time.Minute, 0.8, 16, 0.08},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			settle := tt.d / 10
			tt.prov.rng = rand.New(rand.NewPCG(1, 2))
			got := simulate(tt.prov, tt.conc, tt.min, settle, tt.d)
			want := tt.prov.limit
			if tt.clean != nil {
				tt.clean.rng = rand.New(rand.NewPCG(1, 2))
				want = simulate(tt.clean, tt.conc, tt.min, settle, tt.d).rate()
			}
			t.Logf("%.1f successes/s (%.1f %% of %.1f), %.2f %% of calls 429, lowest concurrency %d, ceiling %.1f/s",
				got.rate(), 100*got.rate()/want, want, 100*got.share(), got.lowest, got.ceiling)
			if got.rate() < tt.pace*want {
				t.Errorf("%.1f successes a second, want at least %.0f %% of %.1f", got.rate(), 100*tt.pace, want)
			}
			if tt.prov.limit > 0 && got.rate() > 1.05*tt.prov.limit {
				t.Errorf("%.1f successes a second through a limit of %.0f", got.rate(), tt.prov.limit)
			}
			if got.lowest < tt.lowest {
				t.Errorf("effective concurrency went down to %d, want at least %d", got.lowest, tt.lowest)
			}
			if got.share() > tt.share {
				t.Errorf("%.2f %% of calls answered 429, want at most %.0f %%", 100*got.share(), 100*tt.share)
			}
		})
	}
}
