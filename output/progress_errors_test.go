package output

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/testterm"
	"github.com/llmbatch/llmbatch/jobs"
)

// tally is an error tally of n failures whose first and latest say first
// and last.
func tally(class jobs.ErrorClass, code int, n int64, first, last string) jobs.ErrorTally {
	return jobs.ErrorTally{Count: n, First: jobs.Failure{Class: class, StatusCode: code, Message: first},
		Last: jobs.Failure{Class: class, StatusCode: code, Message: last}}
}

// withErrors is a run's counters holding the tallies.
func withErrors(tallies ...jobs.ErrorTally) jobs.Progress {
	p := progressAt(0, 0)
	p.Errors = map[jobs.ErrorClass]jobs.ErrorTally{}
	for _, t := range tallies {
		p.Errors[t.First.Class] = t
	}
	return p
}

// The report over successive snapshots: each class's first failure once,
// then, at each count, the failures of the classes that failed since the
// last, with the latest as the example.
func TestErrorReport(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	long := "Rate limit reached for deepseek/deepseek-v3 in organization org-123 on requests per min (RPM): Limit 500, Used 500, Requested 1."
	steps := []struct {
		name  string
		p     jobs.Progress
		at    time.Duration // since start
		count bool          // a count report (else only the firsts)
		want  []string
	}{
		{"Nothing", withErrors(), time.Second, false, nil},
		{"First429", withErrors(tally(jobs.ClassRateLimited, 429, 1, long, long)), 2 * time.Second, false,
			[]string{"llmbatch: job j: 429 rate_limited: Rate limit reached for deepseek/deepseek-v3 in organization org-123 on requests per min (RPM): Limi…"}},
		{"MoreOfTheSame", withErrors(tally(jobs.ClassRateLimited, 429, 5, long, "slow down")), 3 * time.Second, false, nil},
		{"FirstNetwork", withErrors(tally(jobs.ClassRateLimited, 429, 5, long, "slow down"),
			tally(jobs.ClassNetwork, 0, 1, "read: connection\nreset by peer", "read: connection\nreset by peer")), 4 * time.Second, false,
			[]string{"llmbatch: job j: network: read: connection reset by peer"}},
		// The network error happened once, and its first line said so.
		{"Count", withErrors(tally(jobs.ClassRateLimited, 429, 37, long, "slow down"),
			tally(jobs.ClassNetwork, 0, 1, "reset", "reset")), 30 * time.Second, true,
			[]string{"llmbatch: job j: 429 rate_limited ×37 in the last 30s: slow down"}},
		{"QuietInterval", withErrors(tally(jobs.ClassRateLimited, 429, 37, long, "slow down"),
			tally(jobs.ClassNetwork, 0, 1, "reset", "reset")), 60 * time.Second, true, nil},
		// A class first seen in this interval, more than once, is counted
		// too, beside its first line.
		{"NewAndOld", withErrors(tally(jobs.ClassRateLimited, 429, 40, long, "slow"),
			tally(jobs.ClassNetwork, 0, 3, "reset", "refused"),
			tally(jobs.ClassServer, 503, 2, "\x1b[31mdown\x1b[0m", "overloaded")), 90 * time.Second, true,
			[]string{"llmbatch: job j: 503 server_error: [31mdown [0m",
				"llmbatch: job j: network ×2 in the last 30s: refused",
				"llmbatch: job j: 429 rate_limited ×3 in the last 30s: slow",
				"llmbatch: job j: 503 server_error ×2 in the last 30s: overloaded"}},
		// The count at the end of a run covers the time since the last.
		{"Stop", withErrors(tally(jobs.ClassRateLimited, 429, 41, long, "slow")), 102 * time.Second, true,
			[]string{"llmbatch: job j: 429 rate_limited ×1 in the last 12s: slow"}},
	}
	e := newErrorReport("j", start)
	for _, s := range steps {
		now := start.Add(s.at)
		got := e.firsts(s.p)
		if s.count {
			got = append(got, e.counts(s.p, now)...)
		}
		if !slices.Equal(got, s.want) {
			t.Errorf("%s: lines\n%q\nwant\n%q", s.name, got, s.want)
		}
	}
}

func TestAttemptLine(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	outcome := func(class jobs.ErrorClass, code int, msg string, next jobs.Status, counts bool, wait time.Duration) jobs.Outcome {
		return jobs.Outcome{Request: jobs.Request{CustomID: "req-17", Attempts: 1},
			Attempt: &jobs.Attempt{Number: 2, StatusCode: code, Class: class, Message: msg},
			Failure: &jobs.Failure{Class: class, StatusCode: code, Message: msg}, Next: next, CountAttempt: counts, NotBefore: now.Add(wait)}
	}
	tests := []struct {
		name string
		o    jobs.Outcome
		want string
	}{
		{"Retry", outcome(jobs.ClassRateLimited, 429, "Rate limit reached.", jobs.StatusPending, true, 1520*time.Millisecond),
			"llmbatch: job chat: req-17 attempt 2: 429 rate_limited: Rate limit reached. (retry in 1.5s)"},
		{"RetryLater", outcome(jobs.ClassServer, 500, "boom", jobs.StatusPending, true, 65*time.Second+400*time.Millisecond),
			"llmbatch: job chat: req-17 attempt 2: 500 server_error: boom (retry in 1m5s)"},
		{"RetryNow", outcome(jobs.ClassBadResponse, 0, "stream ended before [DONE]", jobs.StatusPending, true, -time.Second),
			"llmbatch: job chat: req-17 attempt 2: bad_response: stream ended before [DONE] (retry now)"},
		{"Failed", outcome(jobs.ClassInvalidRequest, 400, "max_tokens too large", jobs.StatusFailed, true, 0),
			"llmbatch: job chat: req-17 attempt 2: 400 invalid_request: max_tokens too large (failed)"},
		{"Fatal", outcome(jobs.ClassAuth, 401, "Incorrect API key provided: sk-...[REDACTED]", jobs.StatusPending, false, 0),
			"llmbatch: job chat: req-17 attempt 2: 401 auth: Incorrect API key provided: sk-...[REDACTED] (the run stops; the request stays pending)"},
		{"Held", outcome(jobs.ClassNetwork, 0, "dial tcp 127.0.0.1:1: connect: connection refused", jobs.StatusPending, false, 0),
			"llmbatch: job chat: req-17 attempt 2: network: dial tcp 127.0.0.1:1: connect: connection refused (not counted: the run waits for the endpoint to answer)"},
		{"NoMessage", outcome(jobs.ClassServer, 502, "", jobs.StatusPending, true, 2*time.Second),
			"llmbatch: job chat: req-17 attempt 2: 502 server_error (retry in 2s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AttemptLine("chat", tt.o, now); got != tt.want {
				t.Errorf("line\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	t.Run("ControlCharacters", func(t *testing.T) {
		o := outcome(jobs.ClassServer, 500, "line one\nline two\x1b]0;title\x07", jobs.StatusPending, true, time.Second)
		o.Request.CustomID = "id\r\nforged line"
		got := AttemptLine("chat", o, now)
		if strings.ContainsAny(got, "\n\r\x1b\x07") || !strings.Contains(got, "id forged line attempt 2: 500 server_error: line one line two ]0;title (retry") {
			t.Errorf("line %q: want the id and message on one line, without control characters", got)
		}
	})
}

// The log writes every line added, from any goroutine, by Close.
func TestAttemptLog(t *testing.T) {
	var out testterm.Buffer
	l := NewAttemptLog(&out, "chat")
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < attemptQueue; j++ { // more than the queue holds, together
				l.Add(jobs.Outcome{Request: jobs.Request{CustomID: "r"}, Failure: &jobs.Failure{Class: jobs.ClassServer, StatusCode: 500}, Next: jobs.StatusFailed})
			}
		}()
	}
	wg.Wait()
	l.Close()
	if n := strings.Count(out.String(), "llmbatch: job chat: r attempt 1: 500 server_error (failed)\n"); n != 4*attemptQueue {
		t.Errorf("%d lines written, want %d", n, 4*attemptQueue)
	}
}

// counters is a run's counters that a test changes while the display
// reads them.
type counters struct {
	mu sync.Mutex
	p  jobs.Progress
}

func (c *counters) set(p jobs.Progress) {
	c.mu.Lock()
	c.p = p
	c.mu.Unlock()
}

func (c *counters) get() jobs.Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p
}

// Off a terminal, the first failure of a class is logged within a second
// or so, a count at the log interval, and the failures not yet counted
// when the run stops, before the final figures.
func TestProgressTellsErrors(t *testing.T) {
	st := jobs.Stats{Job: jobs.Job{Name: "j", Total: 100}}
	var c counters
	c.set(withErrors())
	var out testterm.Buffer
	msgs := NewMessageWriter(&out)
	stop := StartProgress(context.Background(), NewProgressMeter(st, jobs.Prices{}, time.Now()), c.get,
		ProgressOptions{LogInterval: 2500 * time.Millisecond, Messages: msgs}, &out)
	began := time.Now()
	c.set(withErrors(tally(jobs.ClassRateLimited, 429, 1, "Rate limit reached", "Rate limit reached")))
	first := "llmbatch: job j: 429 rate_limited: Rate limit reached\n"
	waitUntil(t, 3*time.Second, "the first 429's line", func() bool { return strings.Contains(out.String(), first) })
	if d := time.Since(began); d > 1500*time.Millisecond {
		t.Errorf("the first 429 was told after %s, want within about a second", d)
	}
	c.set(withErrors(tally(jobs.ClassRateLimited, 429, 7, "Rate limit reached", "slow down")))
	count := "llmbatch: job j: 429 rate_limited ×7 in the last 2s: slow down\n"
	count3 := strings.Replace(count, "2s", "3s", 1) // the interval, rounded
	waitUntil(t, 5*time.Second, "the count", func() bool {
		return strings.Contains(out.String(), count) || strings.Contains(out.String(), count3)
	})
	c.set(withErrors(tally(jobs.ClassRateLimited, 429, 9, "Rate limit reached", "slow down"),
		tally(jobs.ClassServer, 500, 1, "boom", "boom")))
	stop()
	text := out.String()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if strings.Count(text, first) != 1 || strings.Count(text, "500 server_error: boom\n") != 1 {
		t.Errorf("each first failure should be told once:\n%s", text)
	}
	tail := lines[len(lines)-3:]
	if !strings.HasPrefix(tail[0], "llmbatch: job j: 500 server_error: boom") ||
		!strings.HasPrefix(tail[1], "llmbatch: job j: 429 rate_limited ×2 in the last ") ||
		!strings.HasPrefix(tail[2], "llmbatch: job j: 0/100 done") {
		t.Errorf("the run's end: %q; want the new class's first line, the count since the last, then the final figures", tail)
	}
}

// On a terminal the lines are printed above the bar, through it, and the
// counts come at the log interval there too.
func TestProgressTellsErrorsAboveTheBar(t *testing.T) {
	st := jobs.Stats{Job: jobs.Job{Name: "j", Total: 100}}
	var c counters
	c.set(withErrors(tally(jobs.ClassRateLimited, 429, 3, "Rate limit reached", "slow down")))
	term := &testterm.Terminal{}
	msgs := NewMessageWriter(term)
	stop := StartProgress(context.Background(), NewProgressMeter(st, jobs.Prices{}, time.Now()), c.get,
		ProgressOptions{LogInterval: 1200 * time.Millisecond, NoColor: true, Messages: msgs}, term)
	waitUntil(t, 5*time.Second, "the count", func() bool { return strings.Contains(term.String(), "429 rate_limited ×3 in the last") })
	stop()
	out := term.String()
	if !strings.Contains(out, "\x1b[Jllmbatch: job j: 429 rate_limited: Rate limit reached\n") {
		t.Errorf("the first line was not printed in place of the bar:\n%q", out)
	}
	if strings.Count(out, "×3") != 1 || strings.Contains(out, "done (") {
		t.Errorf("want one count and no log line of the figures under a bar:\n%q", out)
	}
}
