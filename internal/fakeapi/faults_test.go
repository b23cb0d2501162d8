package fakeapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestFaultStatuses(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		status int
		code   any
		header map[string]string
	}{
		{"RateLimit", Faults{RateLimit: 1, RetryAfter: "1", RetryAfterMS: "1000"}, 429, "rate_limit_exceeded",
			map[string]string{"Retry-After": "1", "retry-after-ms": "1000"}},
		{"ServerError", Faults{ServerError: 1}, 500, nil, nil},
		{"Unavailable", Faults{Unavailable: 1}, 503, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, Config{Faults: tt.faults})
			res := mustPost(t, s, "/chat/completions", chatBody("m", "x"))
			if res.status != tt.status {
				t.Fatalf("status %d, want %d", res.status, tt.status)
			}
			for k, v := range tt.header {
				if got := res.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			var e struct{ Error map[string]any }
			if err := json.Unmarshal(res.body, &e); err != nil || e.Error["message"] == nil {
				t.Fatalf("error body %s: %v", res.body, err)
			}
			if e.Error["code"] != tt.code {
				t.Errorf("code %v, want %v", e.Error["code"], tt.code)
			}
			if st := waitIdle(t, s); st.Status[tt.status] != 1 || st.Served != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestFaultReset(t *testing.T) {
	s := Start(t, Config{Faults: Faults{Reset: 1}})
	_, err := post(t, s, "/chat/completions", chatBody("m", "x"))
	if err == nil {
		t.Fatal("no error from a reset connection")
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("error %v, want a connection reset", err)
	}
	if st := waitIdle(t, s); st.Resets != 1 || st.Served != 0 || len(st.Status) != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultSlow(t *testing.T) {
	t.Run("ClientTimesOut", func(t *testing.T) {
		s := Start(t, Config{Faults: Faults{Slow: 1, SlowBy: time.Hour}})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := postCtx(ctx, t, s, "/chat/completions", chatBody("m", "x")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want deadline exceeded", err)
		}
		if st := waitIdle(t, s); st.Canceled != 1 || st.Served != 0 {
			t.Errorf("stats %+v", st)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("slow call took %v after the client left", d)
		}
	})
	t.Run("Answers", func(t *testing.T) {
		s := Start(t, Config{Faults: Faults{Slow: 1, SlowBy: 60 * time.Millisecond}})
		start := time.Now()
		if res := mustPost(t, s, "/chat/completions", chatBody("m", "x")); res.status != 200 {
			t.Fatalf("status %d", res.status)
		}
		if d := time.Since(start); d < 60*time.Millisecond {
			t.Errorf("answered after %v, want at least 60ms", d)
		}
	})
}

func TestFaultBadJSON(t *testing.T) {
	s := Start(t, Config{Faults: Faults{BadJSON: 1}})
	res := mustPost(t, s, "/completions", `{"model":"m","prompt":"x"}`)
	if res.status != 200 || json.Valid(res.body) || len(res.body) == 0 {
		t.Errorf("status %d body %q, want 200 with invalid JSON", res.status, res.body)
	}
	if st := waitIdle(t, s); st.Malformed != 1 || st.Served != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestLatencyStopsWhenClientLeaves(t *testing.T) {
	s := Start(t, Config{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := postCtx(ctx, t, s, "/chat/completions", chatBody("m", "x")); err == nil {
		t.Fatal("no error")
	}
	if st := waitIdle(t, s); st.Canceled != 1 || st.Calls != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestCloseEndsWaits(t *testing.T) {
	s := New(Config{Latency: time.Hour})
	done := make(chan error, 1)
	go func() {
		res, err := http.Post(s.URL()+"/chat/completions", "application/json", nil)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	for s.Stats().InFlight == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a waiting request")
	}
	<-done
	s.Close() // a second Close is harmless
}

func TestScript(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []Call
	)
	s := Start(t, Config{
		Faults: Faults{ServerError: 1},
		Script: func(c Call) Fault {
			mu.Lock()
			calls = append(calls, c)
			mu.Unlock()
			switch {
			case c.CustomKey == "custom":
				return Fault{Status: 400, Body: `{"error":{"message":"custom"}}`}
			case c.Attempt == 1:
				return Fault{Status: 429, Header: map[string]string{"Retry-After": "2"}}
			case c.CustomKey == "prompt-1":
				return Fault{Header: map[string]string{"X-Extra": "yes"}}
			}
			return Fault{} // falls through to Faults
		},
	})
	body := chatBody("deepseek-v3", "prompt-1", `"stream":false`)
	first := mustPost(t, s, "/chat/completions", body)
	if first.status != 429 || first.header.Get("Retry-After") != "2" {
		t.Errorf("attempt 1: status %d Retry-After %q", first.status, first.header.Get("Retry-After"))
	}
	assertErrorCode(t, first.body, "rate_limit_exceeded")
	second := mustPost(t, s, "/chat/completions", body)
	if second.status != 200 || second.header.Get("X-Extra") != "yes" {
		t.Errorf("attempt 2: status %d X-Extra %q", second.status, second.header.Get("X-Extra"))
	}
	mustPost(t, s, "/chat/completions", chatBody("m", "prompt-2")) // attempt 1: 429
	if res := mustPost(t, s, "/chat/completions", chatBody("m", "prompt-2")); res.status != 500 {
		t.Errorf("Fault{} from Script: status %d, want 500 from Faults", res.status)
	}
	custom := mustPost(t, s, "/completions", `{"model":"m","prompt":"custom"}`)
	if custom.status != 400 || string(custom.body) != `{"error":{"message":"custom"}}` {
		t.Errorf("custom fault: %d %s", custom.status, custom.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 5 {
		t.Fatalf("Script saw %d calls, want 5", len(calls))
	}
	got := calls[0]
	if got.N != 1 || got.Path != "/v1/chat/completions" || string(got.Body) != body ||
		got.CustomKey != "prompt-1" || got.Attempt != 1 || got.Model != "deepseek-v3" || got.Stream {
		t.Errorf("first call %+v", got)
	}
	if calls[1].Attempt != 2 || calls[2].Attempt != 1 || calls[3].Attempt != 2 {
		t.Errorf("attempts %d %d %d, want 2 1 2", calls[1].Attempt, calls[2].Attempt, calls[3].Attempt)
	}
	st := waitIdle(t, s)
	if st.Served != 1 || st.ServedByKey["prompt-1"] != 1 || st.Status[429] != 2 || st.Status[500] != 1 || st.Status[400] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestRandomFaultsDeterministic(t *testing.T) {
	statuses := func(seed int64) []int {
		s := Start(t, Config{Seed: seed, Faults: Faults{ServerError: 0.5}})
		var out []int
		for i := 0; i < 100; i++ {
			out = append(out, mustPost(t, s, "/chat/completions", chatBody("m", "x")).status)
		}
		return out
	}
	a, b, c := statuses(7), statuses(7), statuses(8)
	fails := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("call %d: %d then %d with the same seed", i+1, a[i], b[i])
		}
		if a[i] == 500 {
			fails++
		}
	}
	if fails < 35 || fails > 65 {
		t.Errorf("%d of 100 calls failed at rate 0.5", fails)
	}
	if equal := func() bool {
		for i := range a {
			if a[i] != c[i] {
				return false
			}
		}
		return true
	}(); equal {
		t.Error("seeds 7 and 8 gave the same faults")
	}
}

func TestDownRefusesConnectionsThenComesBack(t *testing.T) {
	s := Start(t, Config{})
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	post := func() (*http.Response, error) {
		return http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(body))
	}
	if resp, err := post(); err != nil {
		t.Fatalf("before the outage: %v", err)
	} else {
		resp.Body.Close()
	}
	s.Down(300 * time.Millisecond)
	if !s.IsDown() {
		t.Fatal("IsDown = false during the outage")
	}
	_, err := post()
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("during the outage: err = %v, want connection refused", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.IsDown() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := post()
	if err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after the outage: status %d", resp.StatusCode)
	}
}
