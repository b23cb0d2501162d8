package worker

import (
	"github.com/llmbatch/llmbatch/internal/testclock"
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

func TestPacerConcurrency(t *testing.T) {
	p, clock := newTestPacer(4, 0, 0)
	if d := p.admit(3, 0); d != 0 {
		t.Fatalf("3 of 4 calling: wait %v, want 0", d)
	}
	if d := p.admit(4, 0); d != waitForCall {
		t.Fatalf("4 of 4 calling: wait %v, want a call to end", d)
	}
	p.done(tz, 0, nil, throttled(503, 0), noQuota)
	if s := p.state(); s.Concurrency != 2 || s.MaxConcurrency != 4 || !s.PausedUntil.Equal(tz.Add(cutPause)) {
		t.Errorf("after a 503: %+v, want concurrency 2 of 4 and the pause of a cut", s)
	}
	if d := p.admit(1, 0); d != cutPause {
		t.Errorf("just after a cut: wait %v, want %v", d, cutPause)
	}
	clock.Advance(cutPause)
	if d := p.admit(2, 0); d != waitForCall {
		t.Errorf("2 calling at concurrency 2: wait %v, want a call to end", d)
	}
	clock.Advance(time.Millisecond)
	p.done(tz, 0, nil, throttled(500, 0), noQuota)
	p.done(tz, 0, nil, &CallError{Failure: jobs.Failure{Class: jobs.ClassTimeout}}, noQuota)
	if s := p.state(); s.Concurrency != 2 {
		t.Errorf("a 500 and a timeout changed the concurrency to %d", s.Concurrency)
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

func TestPacerRetryAfterPausesAll(t *testing.T) {
	p, clock := newTestPacer(8, 0, 0)
	p.done(tz, 0, nil, throttled(429, 2*time.Second), noQuota)
	if d := p.admit(0, 0); d != 2*time.Second {
		t.Errorf("after a 429 with Retry-After 2s: wait %v, want 2s", d)
	}
	if s := p.state(); !s.PausedUntil.Equal(tz.Add(2*time.Second)) || s.Concurrency != 4 {
		t.Errorf("state %+v, want paused 2s and concurrency 4", s)
	}
	// A shorter Retry-After does not shorten the pause.
	clock.Advance(500 * time.Millisecond)
	p.done(tz, 0, nil, throttled(503, 100*time.Millisecond), noQuota)
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
	p.done(clock.Now(), 0, nil, throttled(429, 0), noQuota)
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
