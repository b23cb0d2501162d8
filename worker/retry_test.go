package worker

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

var retryNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		name, value string
		want        time.Duration
	}{
		{"Empty", "", 0},
		{"Seconds", "2", 2 * time.Second},
		{"Fractional", "1.5", 1500 * time.Millisecond},
		{"Zero", "0", 0},
		{"Negative", "-5", 0},
		{"NegativeZero", "-0", 0},
		{"Whitespace", " \t 3 \r\n", 3 * time.Second},
		{"JustUnderAnHour", "3599", 3599 * time.Second},
		{"Huge", "999999999", time.Hour},
		{"HugeExponent", "1e30", time.Hour},
		{"DigitsBeyondFloat64", strings.Repeat("9", 400), time.Hour},
		{"Tiny", "1e-400", 0},
		{"NaN", "NaN", 0},
		{"NegativeInf", "-Inf", 0},
		{"DateFuture", retryNow.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"DateFutureRFC850", retryNow.Add(2 * time.Minute).Format(time.RFC850), 2 * time.Minute},
		{"DateFutureANSIC", retryNow.Add(3 * time.Minute).Format(time.ANSIC), 3 * time.Minute},
		{"DateFarFuture", retryNow.AddDate(5, 0, 0).Format(http.TimeFormat), time.Hour},
		{"DatePast", retryNow.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"DateNow", retryNow.Format(http.TimeFormat), 0},
		{"Garbage", "soon", 0},
		{"SecondsWithUnit", "5s", 0},
		{"TwoNumbers", "1 2", 0},
		{"BrokenDate", "Sat, 01 Mar 2025 25:00:00 GMT", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseRetryAfter(tt.value, retryNow); got != tt.want {
				t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestRetryAfterHeaders(t *testing.T) {
	tests := []struct {
		name       string
		header     map[string]string
		want       time.Duration
		wantAtMost time.Duration // for the rounding of fractional ms; 0: exact
	}{
		{"None", nil, 0, 0},
		{"RetryAfterOnly", map[string]string{"Retry-After": "7"}, 7 * time.Second, 0},
		{"MillisecondsWin", map[string]string{"Retry-After": "30", "retry-after-ms": "1500"}, 1500 * time.Millisecond, 0},
		{"MillisecondsOnly", map[string]string{"Retry-After-Ms": "250"}, 250 * time.Millisecond, 0},
		{"FractionalMilliseconds", map[string]string{"retry-after-ms": "0.5"}, 500 * time.Microsecond, 0},
		{"MillisecondsWhitespace", map[string]string{"retry-after-ms": "  20 "}, 20 * time.Millisecond, 0},
		{"MillisecondsGarbageFallsBack", map[string]string{"retry-after-ms": "soon", "Retry-After": "4"}, 4 * time.Second, 0},
		{"MillisecondsNegativeFallsBack", map[string]string{"retry-after-ms": "-100", "Retry-After": "4"}, 4 * time.Second, 0},
		{"MillisecondsNaNFallsBack", map[string]string{"retry-after-ms": "NaN", "Retry-After": "4"}, 4 * time.Second, 0},
		{"MillisecondsZeroAlone", map[string]string{"retry-after-ms": "0"}, 0, 0},
		{"MillisecondsHuge", map[string]string{"retry-after-ms": "1e300"}, time.Hour, 0},
		{"MillisecondsBeyondFloat64", map[string]string{"retry-after-ms": strings.Repeat("9", 400)}, time.Hour, 0},
		{"Date", map[string]string{"Retry-After": retryNow.Add(45 * time.Second).Format(http.TimeFormat)}, 45 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := RetryAfter(h, retryNow); got != tt.want {
				t.Errorf("RetryAfter(%v) = %v, want %v", tt.header, got, tt.want)
			}
		})
	}
}

// delayBounds is the range Delay may return after failed attempts with no
// Retry-After: the doubled interval ±50 %, within [Initial, Max].
func delayBounds(p RetryPolicy, failed int) (lo, hi time.Duration) {
	base := p.Initial
	for i := 1; i < failed && base < p.Max; i++ {
		base *= 2
	}
	base = min(base, p.Max)
	lo = max(p.Initial, base/2)
	hi = min(p.Max, base+base/2)
	return lo, hi
}

func TestRetryPolicyDelay(t *testing.T) {
	p := RetryPolicy{Initial: 100 * time.Millisecond, Max: 10 * time.Second}
	const samples = 400
	mean := map[int]time.Duration{}
	for failed := 1; failed <= 12; failed++ {
		lo, hi := delayBounds(p, failed)
		var sum time.Duration
		for i := 0; i < samples; i++ {
			d := p.Delay(failed, 0)
			if d < lo || d > hi {
				t.Fatalf("Delay(%d, 0) = %v, want within [%v, %v]", failed, d, lo, hi)
			}
			sum += d
		}
		mean[failed] = sum / samples
		t.Logf("failed=%2d mean delay %v (bounds %v..%v)", failed, mean[failed], lo, hi)
	}
	t.Run("GrowsExponentially", func(t *testing.T) {
		// From 3 to 6 failures the interval doubles three times: the means
		// (each ±50 % uniform jitter, 400 samples) are about 8 times apart.
		ratio := float64(mean[6]) / float64(mean[3])
		if ratio < 6 || ratio > 10 {
			t.Errorf("mean delay after 6 failures / after 3 = %.2f, want about 8", ratio)
		}
		if mean[2] <= mean[1] || mean[4] <= mean[3] {
			t.Errorf("mean delays do not grow: %v", mean)
		}
	})
	t.Run("CappedAtMax", func(t *testing.T) {
		sawMax := false
		for i := 0; i < samples; i++ {
			d := p.Delay(40, 0)
			if d > p.Max || d < p.Max/2 {
				t.Fatalf("Delay(40, 0) = %v, want within [%v, %v]", d, p.Max/2, p.Max)
			}
			sawMax = sawMax || d == p.Max
		}
		if !sawMax {
			t.Errorf("Delay(40, 0) never reached Max %v in %d samples", p.Max, samples)
		}
	})
	t.Run("NeverBelowInitial", func(t *testing.T) {
		for i := 0; i < samples; i++ {
			if d := p.Delay(1, 0); d < p.Initial {
				t.Fatalf("Delay(1, 0) = %v, below Initial %v", d, p.Initial)
			}
		}
	})
	t.Run("RetryAfterWins", func(t *testing.T) {
		if got := p.Delay(1, 30*time.Second); got != 30*time.Second {
			t.Errorf("Delay(1, 30s) = %v, want 30s (above Max: the server asked)", got)
		}
		if got := p.Delay(1, 2*time.Hour); got != time.Hour {
			t.Errorf("Delay(1, 2h) = %v, want the 1h bound", got)
		}
		if got := p.Delay(3, 50*time.Millisecond); got != 50*time.Millisecond {
			t.Errorf("Delay(3, 50ms) = %v, want 50ms (below the backoff: the server said when)", got)
		}
	})
	t.Run("MaxBelowInitial", func(t *testing.T) {
		q := RetryPolicy{Initial: time.Second}
		for failed := 1; failed <= 5; failed++ {
			if got := q.Delay(failed, 0); got != time.Second {
				t.Errorf("RetryPolicy{Initial: 1s}.Delay(%d, 0) = %v, want 1s", failed, got)
			}
		}
	})
}

// FuzzParseRetryAfter checks that no header value, as Retry-After or as
// retry-after-ms, panics or asks for a negative wait or one above the
// one-hour bound. Seeds are in testdata/fuzz/FuzzParseRetryAfter too.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "2", "1.5", "-1", "1e308", "1e400", "NaN", "+Inf", "-0",
		"0x1p62", "9223372036854775807", "Sat, 01 Mar 2025 12:01:30 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994", "Fri, 31 Dec 9999 23:59:59 GMT", " 3 ", "garbage"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		check := func(what string, d time.Duration) {
			if d < 0 || d > time.Hour {
				t.Fatalf("%s(%q) = %v, want within [0, 1h]", what, v, d)
			}
		}
		check("ParseRetryAfter", ParseRetryAfter(v, retryNow))
		h := http.Header{}
		h["Retry-After-Ms"] = []string{v}
		check("RetryAfter(retry-after-ms)", RetryAfter(h, retryNow))
		p := RetryPolicy{Initial: time.Second, Max: time.Minute}
		if ra, d := ParseRetryAfter(v, retryNow), p.Delay(3, ParseRetryAfter(v, retryNow)); (ra > 0 && d != ra) || d <= 0 || d > time.Hour {
			t.Fatalf("Delay(3, ParseRetryAfter(%q) = %v) = %v, want the Retry-After, within (0, 1h]", v, ra, d)
		}
	})
}
