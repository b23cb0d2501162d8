package fakeapi

import (
	"math"
	"strconv"
	"sync"
	"time"
)

// Limit is a provider's request rate limit: at most Requests calls per
// Window, as a token bucket (the generic cell rate algorithm) that refills
// continuously and holds Burst calls. A call above the limit is answered
// 429 with Retry-After (whole seconds, rounded up) and retry-after-ms
// saying when the next call will be accepted; a call above the limit is not
// counted against it.
type Limit struct {
	// Requests per Window; 0 means no limit.
	Requests int
	// Window defaults to one minute.
	Window time.Duration
	// Burst is how many calls may arrive at once; by default one second's
	// worth of the rate (Requests × 1s / Window), at least 1.
	Burst int
	// Headers adds OpenAI's x-ratelimit-limit-requests (Requests),
	// x-ratelimit-remaining-requests (calls the bucket would accept now)
	// and x-ratelimit-reset-requests (time until the bucket is full again,
	// as "1.5s") to every answer the limit sees, 429s included.
	Headers bool
	// NoRetryAfter leaves Retry-After and retry-after-ms out of the 429s.
	NoRetryAfter bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limiter enforces a Limit on the calls of a Server through its Script.
// Its methods are safe for concurrent use.
type Limiter struct {
	lim       Limit
	interval  time.Duration // Window / Requests: the time one call's token takes to come back
	tolerance time.Duration

	mu       sync.Mutex
	tat      time.Time // theoretical arrival time: the bucket is full from then on
	accepted int64
	limited  int64
}

// NewLimiter returns a Limiter for lim.
func NewLimiter(lim Limit) *Limiter {
	if lim.Window <= 0 {
		lim.Window = time.Minute
	}
	if lim.Now == nil {
		lim.Now = time.Now
	}
	l := &Limiter{lim: lim}
	if lim.Requests > 0 {
		l.interval = lim.Window / time.Duration(lim.Requests)
		if lim.Burst <= 0 {
			lim.Burst = max(1, int(int64(lim.Requests)*int64(time.Second)/int64(lim.Window)))
		}
		l.lim.Burst = lim.Burst
		l.tolerance = time.Duration(lim.Burst-1) * l.interval
	}
	return l
}

// Script returns a Config.Script that answers calls above the limit with a
// 429 and hands the others to next (nil: the normal answer, with the
// limit's headers when Limit.Headers is set). Faults of next that answer
// with an error still count against the limit, as a provider counts them.
func (l *Limiter) Script(next func(Call) Fault) func(Call) Fault {
	return func(c Call) Fault {
		ok, h := l.take()
		if !ok {
			return Fault{Status: 429, Header: h}
		}
		var f Fault
		if next != nil {
			f = next(c)
		}
		if len(h) > 0 {
			merged := make(map[string]string, len(h)+len(f.Header))
			for k, v := range h {
				merged[k] = v
			}
			for k, v := range f.Header {
				merged[k] = v
			}
			f.Header = merged
		}
		return f
	}
}

// Counts returns how many calls the limit accepted and how many it
// answered with a 429.
func (l *Limiter) Counts() (accepted, limited int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted, l.limited
}

// take decides one call and returns the headers to answer it with.
func (l *Limiter) take() (bool, map[string]string) {
	if l.lim.Requests <= 0 {
		return true, nil
	}
	now := l.lim.Now()
	l.mu.Lock()
	tat := l.tat
	if tat.Before(now) {
		tat = now
	}
	allowAt := tat.Add(-l.tolerance)
	ok := !now.Before(allowAt)
	if ok {
		tat = tat.Add(l.interval)
		l.tat = tat
		l.accepted++
	} else {
		l.limited++
	}
	l.mu.Unlock()

	h := map[string]string{}
	if !ok && !l.lim.NoRetryAfter {
		wait := allowAt.Sub(now)
		h["Retry-After"] = strconv.FormatInt(int64(math.Ceil(wait.Seconds())), 10)
		h["retry-after-ms"] = strconv.FormatInt(max(1, int64(math.Ceil(float64(wait)/float64(time.Millisecond)))), 10)
	}
	if l.lim.Headers {
		// Calls accepted now: the bucket holds Burst, less the calls whose
		// tokens have not come back.
		remaining := int64(0)
		if spare := now.Add(l.tolerance).Sub(tat); spare >= 0 {
			remaining = min(int64(l.lim.Burst), int64(spare/l.interval)+1)
		}
		h["x-ratelimit-limit-requests"] = strconv.Itoa(l.lim.Requests)
		h["x-ratelimit-remaining-requests"] = strconv.FormatInt(remaining, 10)
		h["x-ratelimit-reset-requests"] = formatReset(tat.Sub(now))
	}
	if len(h) == 0 {
		return ok, nil
	}
	return ok, h
}

// formatReset writes a duration as OpenAI does in x-ratelimit-reset-*:
// "20ms", "1.5s", "6m0s".
func formatReset(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d < time.Second {
		return strconv.FormatInt(max(1, d.Milliseconds()), 10) + "ms"
	}
	return d.Round(time.Millisecond).String()
}
