package worker

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// maxRetryAfter bounds how long a server may ask us to wait for one request.
const maxRetryAfter = time.Hour

// RetryPolicy computes when a request that failed with a retryable error may
// be tried again. The delay is stored with the request (its not-before
// time), so it holds across restarts and the worker is free meanwhile.
type RetryPolicy struct {
	// Initial is the delay after the first failed attempt; it doubles each
	// attempt (±50 % jitter), never below Initial nor above Max.
	Initial, Max time.Duration
}

// Delay returns the wait before attempt number failed+1, given that failed
// attempts have been made: the server's Retry-After when it sent one (up
// to an hour), else the backoff. The OpenAI SDK honours only waits of up
// to a minute and backs off otherwise; an unattended batch job can afford
// to wait as long as the server asks, and a request sent sooner would only
// be refused again. A Retry-After is the server's own word on when it can
// answer; the adaptive controller and the outage pause keep a server that
// says "now" too often from a storm.
func (p RetryPolicy) Delay(failed int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, maxRetryAfter)
	}
	hi := max(p.Max, p.Initial)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.Initial
	b.MaxInterval = hi
	b.Multiplier = 2 // the library's default is 1.5
	b.MaxElapsedTime = 0
	b.Reset()
	d := p.Initial
	for i := 0; i < failed; i++ {
		d = b.NextBackOff()
	}
	// The jitter spreads around the current interval, so it can fall below
	// Initial or, once the interval reaches Max, rise above Max.
	return min(max(d, p.Initial), hi)
}

// RetryAfter reads how long the server asks us to wait: the retry-after-ms
// header (milliseconds, possibly fractional), else Retry-After in seconds or
// as an HTTP date. It returns 0 when neither is present or readable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("retry-after-ms")); v != "" {
		if ms, err := parseNumber(v); err == nil && ms > 0 { // false for NaN
			return clampWait(ms, time.Millisecond)
		}
	}
	return ParseRetryAfter(h.Get("Retry-After"), now)
}

// ParseRetryAfter parses a Retry-After value: delay-seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := parseNumber(v); err == nil {
		if !(secs > 0) { // NaN too
			return 0
		}
		return clampWait(secs, time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// parseNumber parses a decimal number. A value too large for a float64 (a
// long run of digits is valid delay-seconds) reads as +Inf, the longest
// wait, not as garbage.
func parseNumber(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if errors.Is(err, strconv.ErrRange) {
		err = nil // ±Inf or ±0, which the callers bound
	}
	return f, err
}

// clampWait converts n units to a duration of at most maxRetryAfter,
// comparing before converting: a float64 too large for a Duration converts
// to an unspecified value.
func clampWait(n float64, unit time.Duration) time.Duration {
	if n >= float64(maxRetryAfter/unit) {
		return maxRetryAfter
	}
	return time.Duration(n * float64(unit))
}
