package worker

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Quota is what a response's x-ratelimit-* headers (OpenAI's names) say
// about the provider's limits. A count the provider did not send is -1, a
// reset it did not send is 0.
type Quota struct {
	LimitRequests, RemainingRequests int64
	// ResetRequests is how long until the request limit is back to full.
	ResetRequests                time.Duration
	LimitTokens, RemainingTokens int64
	ResetTokens                  time.Duration
}

// noQuota is a Quota of a response that sent no x-ratelimit-* header.
var noQuota = Quota{LimitRequests: -1, RemainingRequests: -1, LimitTokens: -1, RemainingTokens: -1}

// The x-ratelimit-* header names in canonical form, so that looking them
// up on every answer allocates nothing.
const (
	hLimitRequests     = "X-Ratelimit-Limit-Requests"
	hRemainingRequests = "X-Ratelimit-Remaining-Requests"
	hResetRequests     = "X-Ratelimit-Reset-Requests"
	hLimitTokens       = "X-Ratelimit-Limit-Tokens"
	hRemainingTokens   = "X-Ratelimit-Remaining-Tokens"
	hResetTokens       = "X-Ratelimit-Reset-Tokens"
)

// hasQuota reports whether h has an x-ratelimit-remaining-* header.
func hasQuota(h http.Header) bool {
	return len(h[hRemainingRequests]) > 0 || len(h[hRemainingTokens]) > 0
}

// ParseQuota reads the x-ratelimit-limit-*, x-ratelimit-remaining-* and
// x-ratelimit-reset-* headers of h. A value it cannot read counts as not
// sent.
func ParseQuota(h http.Header, now time.Time) Quota {
	q := noQuota
	if !hasQuota(h) {
		return q
	}
	q.LimitRequests = parseCount(h.Get(hLimitRequests))
	q.RemainingRequests = parseCount(h.Get(hRemainingRequests))
	q.ResetRequests = ParseReset(h.Get(hResetRequests), now)
	q.LimitTokens = parseCount(h.Get(hLimitTokens))
	q.RemainingTokens = parseCount(h.Get(hRemainingTokens))
	q.ResetTokens = ParseReset(h.Get(hResetTokens), now)
	return q
}

// parseCount reads a non-negative count, or returns -1.
func parseCount(v string) int64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || !(f >= 0) || f > math.MaxInt32 {
		return -1
	}
	return int64(f)
}

// ParseReset reads an x-ratelimit-reset-* value as the time until the
// limit resets, at most an hour: a Go-style duration as OpenAI sends it
// ("1s", "6m0s", "20ms", "1m30.5s"), a number of seconds ("30", "0.5"), a
// Unix time in seconds, or an RFC 3339 time. It returns 0 for anything
// else, or a time in the past.
func ParseReset(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if d, err := time.ParseDuration(v); err == nil {
		return min(max(d, 0), maxRetryAfter)
	}
	if f, err := parseNumber(v); err == nil {
		if !(f > 0) {
			return 0
		}
		if f >= 1e9 { // a Unix time, not a count of seconds
			return untilTime(time.Unix(int64(min(f, 1e15)), 0), now)
		}
		return clampWait(f, time.Second)
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return untilTime(t, now)
	}
	return 0
}

func untilTime(t, now time.Time) time.Duration {
	return min(max(t.Sub(now), 0), maxRetryAfter)
}
