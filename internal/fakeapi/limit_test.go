package fakeapi

import (
	"github.com/llmbatch/llmbatch/internal/testclock"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	clock := testclock.New(time.Unix(1700000000, 0))
	lim := NewLimiter(Limit{Requests: 60, Window: time.Minute, Burst: 3, Headers: true, Now: clock.Now})
	s := Start(t, Config{Script: lim.Script(nil)})
	call := func() response {
		t.Helper()
		return mustPost(t, s, "/chat/completions", chatBody("m", "x"))
	}
	type want struct {
		status                   int
		remaining, reset         string
		retryAfter, retryAfterMS string
	}
	check := func(step string, res response, w want) {
		t.Helper()
		got := want{res.status, res.header.Get("x-ratelimit-remaining-requests"), res.header.Get("x-ratelimit-reset-requests"),
			res.header.Get("Retry-After"), res.header.Get("retry-after-ms")}
		if got != w {
			t.Errorf("%s: got %+v, want %+v", step, got, w)
		}
		if l := res.header.Get("x-ratelimit-limit-requests"); l != "60" {
			t.Errorf("%s: x-ratelimit-limit-requests = %q, want 60", step, l)
		}
	}
	// A burst of 3 at one call a second: the fourth call at once is refused
	// until the first token comes back, a second later.
	check("1st", call(), want{200, "2", "1s", "", ""})
	check("2nd", call(), want{200, "1", "2s", "", ""})
	check("3rd", call(), want{200, "0", "3s", "", ""})
	check("4th", call(), want{429, "0", "3s", "1", "1000"})
	clock.Advance(400 * time.Millisecond)
	check("after 400ms", call(), want{429, "0", "2.6s", "1", "600"})
	clock.Advance(600 * time.Millisecond)
	check("after 1s", call(), want{200, "0", "3s", "", ""})
	clock.Advance(time.Hour)
	check("after an hour", call(), want{200, "2", "1s", "", ""})

	if acc, limited := lim.Counts(); acc != 5 || limited != 2 {
		t.Errorf("Counts = %d accepted, %d limited; want 5, 2", acc, limited)
	}
	if st := waitIdle(t, s); st.Status[429] != 2 || st.Served != 5 {
		t.Errorf("server stats: %d 429s, %d served; want 2, 5", st.Status[429], st.Served)
	}
}

func TestLimitDefaults(t *testing.T) {
	clock := testclock.New(time.Unix(1700000000, 0))
	// 3,000 a minute holds one second's worth, 50 calls; no headers unless
	// asked for.
	lim := NewLimiter(Limit{Requests: 3000, Now: clock.Now})
	script := lim.Script(func(Call) Fault { return Fault{Header: map[string]string{"X-Next": "1"}} })
	for i := 1; i <= 51; i++ {
		f := script(Call{N: int64(i)})
		if i <= 50 && (f.Status != 0 || f.Header["X-Next"] != "1" || len(f.Header) != 1) {
			t.Fatalf("call %d: %+v, want next's fault alone", i, f)
		}
		if i == 51 && (f.Status != 429 || f.Header["retry-after-ms"] != "20") {
			t.Fatalf("call %d: %+v, want a 429 asking to wait 20ms", i, f)
		}
	}
	clock.Advance(time.Second)
	for i := 0; i < 50; i++ {
		if f := script(Call{}); f.Status != 0 {
			t.Fatalf("after a second, call %d was refused: %+v", i, f)
		}
	}
	if f := script(Call{}); f.Status != 429 {
		t.Fatalf("call above the refilled burst: %+v, want a 429", f)
	}
	if f := NewLimiter(Limit{}).Script(nil)(Call{}); !f.isZero() {
		t.Errorf("no limit: %+v, want the normal answer", f)
	}
}

func TestFormatReset(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 20 * time.Millisecond: "20ms", 1500 * time.Millisecond: "1.5s",
		6 * time.Minute: "6m0s", 300 * time.Microsecond: "1ms"} {
		if got := formatReset(d); got != want {
			t.Errorf("formatReset(%v) = %q, want %q", d, got, want)
		}
	}
}
