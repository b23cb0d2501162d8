package worker

import (
	"math"
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
	// attempt (±50 % jitter) up to Max.
	Initial, Max time.Duration
}

// Delay returns the wait before attempt number failed+1, given that failed
// attempts have been made. A server's Retry-After wins when it is longer.
func (p RetryPolicy) Delay(failed int, retryAfter time.Duration) time.Duration {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.Initial
	b.MaxInterval = p.Max
	b.MaxElapsedTime = 0
	b.Reset()
	d := p.Initial
	for i := 0; i < failed; i++ {
		d = b.NextBackOff()
	}
	return max(d, min(retryAfter, maxRetryAfter))
}

// RetryAfter reads how long the server asks us to wait: the retry-after-ms
// header (milliseconds, possibly fractional), else Retry-After in seconds or
// as an HTTP date. It returns 0 when neither is present or readable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("retry-after-ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && !math.IsInf(ms, 0) {
			return clampWait(time.Duration(ms * float64(time.Millisecond)))
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
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || math.IsNaN(secs) || math.IsInf(secs, 0) {
			return 0
		}
		return clampWait(time.Duration(secs * float64(time.Second)))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return clampWait(d)
		}
	}
	return 0
}

func clampWait(d time.Duration) time.Duration {
	if d < 0 || d > maxRetryAfter {
		return maxRetryAfter
	}
	return d
}
