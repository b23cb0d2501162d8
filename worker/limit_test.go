package worker

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

var tz = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return tz.Add(time.Duration(ms) * time.Millisecond) }

func TestBucket(t *testing.T) {
	t.Run("RequestsPerMinute", func(t *testing.T) {
		// 6,000 a minute is one every 10 ms; the bucket saves up two.
		b := newBucket(6000, at(0))
		if b.need != 1 || b.burst != 2 {
			t.Fatalf("need %v, burst %v; want 1 and 2", b.need, b.burst)
		}
		for i := 0; i < 2; i++ {
			if d := b.wait(at(0), 1); d != 0 {
				t.Fatalf("request %d of a full bucket waits %v", i+1, d)
			}
			b.take(at(0), 1)
		}
		if d := b.wait(at(0), 1); d != 10*time.Millisecond {
			t.Errorf("after two requests: wait %v, want 10ms", d)
		}
		if d := b.wait(at(4), 1); d != 6*time.Millisecond {
			t.Errorf("4ms later: wait %v, want 6ms", d)
		}
		if d := b.wait(at(10), 1); d != 0 {
			t.Errorf("10ms later: wait %v, want 0", d)
		}
		// A dispatcher that wakes late loses nothing: what came in
		// meanwhile counts for the next request.
		b.take(at(13), 1)
		if d := b.wait(at(13), 1); d != 7*time.Millisecond {
			t.Errorf("after a request 3ms late: wait %v, want 7ms", d)
		}
		// Idle for a minute, the bucket holds only two requests.
		for i := 0; i < 2; i++ {
			if d := b.wait(at(60_000), 1); d != 0 {
				t.Fatal(d)
			}
			b.take(at(60_000), 1)
		}
		if d := b.wait(at(60_000), 1); d != 10*time.Millisecond {
			t.Errorf("after an idle minute: wait %v, want 10ms (no saved-up burst)", d)
		}
	})
	t.Run("BurstScalesWithRate", func(t *testing.T) {
		// 600,000 a minute: 10,000 a second, 200 in twice the 10 ms window.
		b := newBucket(600_000, at(0))
		for i := 0; i < 200; i++ {
			if d := b.wait(at(0), 1); d != 0 {
				t.Fatalf("request %d of the burst waits %v", i+1, d)
			}
			b.take(at(0), 1)
		}
		if d := b.wait(at(0), 1); d != 100*time.Microsecond {
			t.Errorf("after the burst: wait %v, want 100µs", d)
		}
	})
	t.Run("CostAboveBurst", func(t *testing.T) {
		// 60,000 tokens a minute: 1,000 a second, saving up 20. A request
		// of 1,010 tokens goes once 10 are saved up; the next one waits
		// for the debt.
		b := newBucket(60_000, at(0))
		if d := b.wait(at(0), 1010); d != 0 {
			t.Fatalf("a full bucket makes a large request wait %v", d)
		}
		b.take(at(0), 1010)
		if d := b.wait(at(0), 1010); d != time.Second {
			t.Errorf("next large request waits %v, want 1s (990 of debt and 10 saved up)", d)
		}
		if d := b.wait(at(0), 5); d != 995*time.Millisecond {
			t.Errorf("a small request waits %v, want 995ms", d)
		}
	})
	t.Run("Reconcile", func(t *testing.T) {
		b := newBucket(60_000, at(0))
		b.take(at(0), 1010) // the estimate
		b.give(at(0), 1000) // the request used 10: as if it had been charged 10
		if d := b.wait(at(0), 10); d != 0 {
			t.Errorf("after the refund: wait %v, want 0 (not 1s)", d)
		}
		b.take(at(10), 100)
		b.give(at(10), -400) // it used 500: charge the difference
		if d := b.wait(at(10), 10); d != 490*time.Millisecond {
			t.Errorf("after the charge: wait %v, want 490ms (20 saved up, 500 used)", d)
		}
	})
	t.Run("RefundAboveBurst", func(t *testing.T) {
		// A refund that arrives when the bucket has refilled is kept: the
		// tokens were charged and never used.
		b := newBucket(60_000, at(0))
		b.take(at(0), 1010)
		b.give(at(5000), 1000)
		if got := b.balance; got != 1020 {
			t.Errorf("balance %v, want the 20 saved up plus the refund 1,000", got)
		}
	})
}

func TestEstimateTokens(t *testing.T) {
	msgs := `[{"role":"user","content":"Hello there, how are you?"}]` // 55 bytes: 14 tokens
	tests := []struct {
		name string
		body string
		want int64
	}{
		{"ChatDefaultMaxTokens", `{"model":"m","messages":` + msgs + `}`, 14 + DefaultMaxTokens},
		{"MaxTokens", `{"model":"m","messages":` + msgs + `,"max_tokens":100}`, 14 + 100},
		{"MaxTokensTimesN", `{"n":3,"model":"m","messages":` + msgs + `,"max_tokens":100}`, 14 + 300},
		{"MaxCompletionTokens", `{"model":"m","messages":` + msgs + `,"max_completion_tokens":50}`, 14 + 50},
		{"MaxTokensWins", `{"model":"m","messages":` + msgs + `,"max_completion_tokens":50,"max_tokens":70}`, 14 + 70},
		{"Prompt", `{"model":"m","prompt":"12345678","max_tokens":1e2}`, 3 + 100}, // "12345678" with quotes: 10 bytes
		{"PromptTokens", `{"model":"m","prompt":[1,2,3],"max_tokens":1}`, 2 + 1},  // 7 bytes
		{"BadNumbers", `{"model":"m","prompt":"","max_tokens":"many","n":0}`, 1 + DefaultMaxTokens},
		{"NotAnObject", `[1,2,3,4,5,6,7,8]`, 5 + DefaultMaxTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EstimateTokens([]byte(tt.body)); got != tt.want {
				t.Errorf("EstimateTokens(%s) = %d, want %d", tt.body, got, tt.want)
			}
		})
	}
}

func TestParseQuota(t *testing.T) {
	h := http.Header{}
	h.Set("x-ratelimit-limit-requests", "3000")
	h.Set("x-ratelimit-remaining-requests", "2999")
	h.Set("x-ratelimit-reset-requests", "20ms")
	h.Set("x-ratelimit-limit-tokens", "150000")
	h.Set("x-ratelimit-remaining-tokens", "149984")
	h.Set("x-ratelimit-reset-tokens", "6m0s")
	got := ParseQuota(h, tz)
	want := Quota{LimitRequests: 3000, RemainingRequests: 2999, ResetRequests: 20 * time.Millisecond,
		LimitTokens: 150000, RemainingTokens: 149984, ResetTokens: 6 * time.Minute}
	if got != want {
		t.Errorf("ParseQuota = %+v, want %+v", got, want)
	}
	if got := ParseQuota(http.Header{}, tz); got != noQuota {
		t.Errorf("no headers: %+v, want all unknown", got)
	}
	h = http.Header{}
	h.Set("x-ratelimit-remaining-requests", "lots")
	h.Set("x-ratelimit-remaining-tokens", "-5")
	if got := ParseQuota(h, tz); got != noQuota {
		t.Errorf("unreadable values: %+v, want all unknown", got)
	}
}

func TestParseReset(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"1s", time.Second},
		{"6m0s", 6 * time.Minute},
		{"20ms", 20 * time.Millisecond},
		{"1m30.5s", 90500 * time.Millisecond},
		{" 30 ", 30 * time.Second},
		{"0.25", 250 * time.Millisecond},
		{fmt.Sprint(tz.Add(90 * time.Second).Unix()), 90 * time.Second},
		{tz.Add(2 * time.Minute).Format(time.RFC3339), 2 * time.Minute},
		{tz.Add(-time.Minute).Format(time.RFC3339), 0},
		{"-3s", 0},
		{"100h", time.Hour},
		{"1e400", time.Hour},
		{"NaN", 0},
		{"", 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := ParseReset(tt.in, tz); got != tt.want {
			t.Errorf("ParseReset(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseReset(f *testing.F) {
	for _, s := range []string{"1s", "6m0s", "20ms", "30", "0.5", "1700000000", "2025-03-01T12:00:00Z", "-1", "NaN", "1e999", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := ParseReset(v, tz)
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("ParseReset(%q) = %v, outside [0, %v]", v, d, maxRetryAfter)
		}
	})
}
