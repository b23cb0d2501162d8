package output

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/internal/testterm"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/vbauerster/mpb/v8/decor"
)

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
	}
}

func TestETA(t *testing.T) {
	for _, tc := range []struct {
		name      string
		remaining int64
		rate      float64
		want      string
	}{
		{"Done", 0, 5, "0s"},
		{"NoRate", 10, 0, "unknown"},
		{"Minutes", 600, 2, "5m0s"},
		{"UnderASecond", 2, 6, "under 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := eta(tc.remaining, tc.rate); got != tc.want {
				t.Errorf("eta(%d, %g) = %q, want %q", tc.remaining, tc.rate, got, tc.want)
			}
		})
	}
}

// progressAt is the counters of a run that has finished done requests and
// seen tokens tokens.
func progressAt(done, tokens int64) jobs.Progress {
	return jobs.Progress{Succeeded: done, Tokens: tokens, Usage: map[string]jobs.Usage{},
		State: jobs.RunState{Concurrency: 4, MaxConcurrency: 8}}
}

func TestProgressMeterRates(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := jobs.Stats{Job: jobs.Job{Name: "j", Total: 10000},
		Counts: map[jobs.Status]int{jobs.StatusSucceeded: 90, jobs.StatusFailed: 10}}
	m := NewProgressMeter(st, jobs.Prices{}, start)
	// Two minutes at 10 requests (1000 tokens) a second, then one at 1 (100).
	var done, tokens int64
	var f progressFigures
	for s := 1; s <= 180; s++ {
		rate := int64(10)
		if s > 120 {
			rate = 1
		}
		done, tokens = done+rate, tokens+100*rate
		// Measured more often than once a second: the samples stay one a second.
		f = m.measure(progressAt(done, tokens), start.Add(time.Duration(s)*time.Second-300*time.Millisecond))
		f = m.measure(progressAt(done, tokens), start.Add(time.Duration(s)*time.Second))
	}
	// Over the last minute: 1 a second, whatever came before.
	if f.ReqRate < 0.9 || f.ReqRate > 1.1 || f.TokRate < 90 || f.TokRate > 110 {
		t.Errorf("rates %.2f req/s, %.1f tok/s; want about 1 and 100 (the average since the start is %.1f)", f.ReqRate, f.TokRate, float64(done)/180)
	}
	if len(m.samples) > 62 {
		t.Errorf("%d samples kept for a one-minute window", len(m.samples))
	}
	wantDone := int64(100) + done
	if f.Done != wantDone || f.Total != 10000 || f.Failed != 10 || f.Concurrency != 4 || f.MaxConcurrency != 8 || f.Cost != "" {
		t.Errorf("figures %+v; want %d done of 10000, 10 failed (before this run), concurrency 4/8, no cost", f, wantDone)
	}
	if want := eta(10000-wantDone, f.ReqRate); f.ETA != want || !strings.HasPrefix(f.ETA, "2h") {
		t.Errorf("ETA %s, want %s (%d left at about 1/s)", f.ETA, want, 10000-wantDone)
	}
	// Nothing finishes for a minute: no rate, no ETA.
	for s := 181; s <= 245; s++ {
		f = m.measure(progressAt(done, tokens), start.Add(time.Duration(s)*time.Second))
	}
	if f.ReqRate != 0 || f.ETA != "unknown" {
		t.Errorf("after a minute without progress: %.2f req/s, ETA %s; want 0 and unknown", f.ReqRate, f.ETA)
	}
}

// A message written while the bar is drawn goes through it (printed above
// the bar, once), and straight to stderr before and after.
func TestProgressMessages(t *testing.T) {
	term := &testterm.Terminal{}
	msgs := NewMessageWriter(term)
	fmt.Fprint(msgs, "before the bar\n")
	bar := newProgressBar("job", 10, true, term, terminalWidth)
	bar.show(progressFigures{Name: "job", Done: 3, Total: 10, Percent: 30, ETA: "unknown"})
	msgs.attach(bar)
	waitUntil(t, 5*time.Second, "the first frame", func() bool { return strings.Contains(term.String(), "3/10 30.0%") })
	fmt.Fprint(msgs, "llmbatch: stopping: no new requests\n")
	msgs.attach(nil)
	bar.finish(progressFigures{Name: "job", Done: 4, Total: 10, Percent: 40, ETA: "unknown"})
	fmt.Fprint(msgs, "after the bar\n")

	out := term.String()
	if strings.Count(out, "llmbatch: stopping: no new requests") != 1 {
		t.Fatalf("the message is not in the output once:\n%q", out)
	}
	// Through the bar, the frame drawn is erased before the message is
	// printed (cursor up, erase down); written straight, it would follow
	// the frame and leave it torn.
	if !strings.Contains(out, "\x1b[Jllmbatch: stopping") {
		t.Errorf("the message was not printed in place of the bar:\n%q", out)
	}
	before, during, after := strings.Index(out, "before the bar"), strings.Index(out, "llmbatch: stopping"), strings.Index(out, "after the bar")
	last := strings.LastIndex(out, "4/10 40.0%")
	if before != 0 || during < before || last < during || after < last {
		t.Errorf("order: before %d, message %d, last frame %d, after %d; want in that order\n%q", before, during, last, after, out)
	}
}

// The display starts while the job's usage is summed, beside a run that
// is already sending: what the runner finished before it started is in
// done, not in the rates. Here the run finishes nothing while the display
// is up, so its last line has no rate.
func TestProgressRatesStartWithTheDisplay(t *testing.T) {
	st := jobs.Stats{Job: jobs.Job{Name: "j", Total: 1000}, Counts: map[jobs.Status]int{jobs.StatusSucceeded: 10}}
	m := NewProgressMeter(st, jobs.Prices{}, time.Now())
	var out testterm.Buffer
	stop := StartProgress(context.Background(), m, func() jobs.Progress { return progressAt(200, 20000) },
		ProgressOptions{LogInterval: time.Hour}, &out)
	stop()
	line := strings.TrimSpace(out.String())
	for _, want := range []string{" 210/1000 done ", " 0.0 req/s and 0 tok/s ", " ETA unknown"} {
		if !strings.Contains(line, want) {
			t.Errorf("last line %q lacks %q: want 210 done, no rate (nothing finished while it was shown), ETA unknown", line, want)
		}
	}
}

// outageAt is the counters of a run paused by an outage since 2m10s
// before now, probing next 40s after now.
func outageAt(now time.Time) jobs.Progress {
	p := progressAt(120, 9000)
	p.State.Outage = "127.0.0.1:1 unreachable (connection refused)"
	p.State.OutageSince, p.State.NextProbe = now.Add(-130*time.Second), now.Add(40*time.Second)
	return p
}

// TestProgressPause: the log line and the bar say why dispatch is paused,
// for how long, and when the next probe is.
func TestProgressPause(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)
	st := jobs.Stats{Job: jobs.Job{Name: "night", Total: 2000}}
	tests := []struct {
		name      string
		p         func(time.Time) jobs.Progress
		wantPause string
	}{
		{"Outage", outageAt, "paused: 127.0.0.1:1 unreachable (connection refused) for 2m10s; next probe in 40s"},
		{"Probing", func(now time.Time) jobs.Progress {
			p := outageAt(now)
			p.State.NextProbe = now.Add(-time.Second)
			return p
		}, "paused: 127.0.0.1:1 unreachable (connection refused) for 2m10s; probing"},
		{"NotPaused", func(time.Time) jobs.Progress { return progressAt(120, 9000) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewProgressMeter(st, jobs.Prices{}, now.Add(-time.Hour))
			f := m.measure(tt.p(now), now)
			line := f.logLine()
			if paused := strings.Contains(line, "paused"); paused != (tt.wantPause != "") ||
				(paused && !strings.HasSuffix(line, "; "+tt.wantPause)) || !strings.Contains(line, " 120/2000 done ") {
				t.Errorf("log line %q; want 120/2000 done and the pause %q", line, tt.wantPause)
			}
			bar := f.barLine()
			if paused := tt.wantPause != ""; strings.HasSuffix(bar, " paused") != paused || strings.Contains(bar, "ETA") == paused {
				t.Errorf("bar line %q; want it to say paused: %v", bar, paused)
			}
			if line := statsLine(f, 120); tt.wantPause != "" && !strings.Contains(line, tt.wantPause) {
				t.Errorf("bar's second line %q lacks %q", line, tt.wantPause)
			}
		})
	}
}

// statsLine is the bar's second line of f at width columns, without colour.
func statsLine(f progressFigures, width int) string {
	b := &progressBar{noColor: true, fig: f}
	var out bytes.Buffer
	_ = b.fillStats(&out, decor.Statistics{AvailableWidth: width})
	return strings.TrimSuffix(out.String(), "\n")
}

// TestProgressFits: the bar's second line fits the terminal, leaving out
// the least important figures first; at 80 columns the cost and a pause
// are always there, whole or (the pause's reason) cut.
func TestProgressFits(t *testing.T) {
	busy := progressFigures{Name: "night", Done: 123456, Total: 200000, Percent: 61.7, Failed: 1234, Retrying: 340,
		ReqRate: 123.4, TokRate: 45678, ETA: "1h2m3s", Concurrency: 32, MaxConcurrency: 32, Cost: "1234.5678 USD"}
	paused := busy
	paused.Outage, paused.OutageFor, paused.NextProbeIn = "api.example.com:443 unreachable (dial tcp: lookup api.example.com: no such host)",
		130*time.Second, 40*time.Second
	tests := []struct {
		name  string
		f     progressFigures
		width int
		want  []string // the parts shown, in order
	}{
		{"Wide", busy, 160, []string{"123.4 req/s, 45678 tok/s", "1234 failed", "340 retrying", "conc 32/32", "cost 1234.5678 USD"}},
		{"Eighty", busy, 80, []string{"123.4 req/s, 45678 tok/s", "1234 failed", "340 retrying", "cost 1234.5678 USD"}},
		{"Sixty", busy, 60, []string{"123.4 req/s, 45678 tok/s", "1234 failed", "cost 1234.5678 USD"}},
		{"Forty", busy, 40, []string{"1234 failed", "cost 1234.5678 USD"}},
		{"Twenty", busy, 20, []string{"cost 1234.5678 USD"}},
		{"PausedEighty", paused, 80, []string{"paused: api.example.com:443… for 2m10s; next probe in 40s", "cost 1234.5678 USD"}},
		{"PausedWide", paused, 220, []string{"paused: " + paused.Outage + " for 2m10s; next probe in 40s",
			"123.4 req/s, 45678 tok/s", "1234 failed", "340 retrying", "conc 32/32", "cost 1234.5678 USD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := statsLine(tt.f, tt.width)
			if want := statsIndent + strings.Join(tt.want, statsSep); line != want {
				t.Errorf("line at %d columns:\n%q\nwant\n%q", tt.width, line, want)
			}
			if n := utf8.RuneCountInString(line); n > tt.width {
				t.Errorf("line of %d columns at width %d: %q", n, tt.width, line)
			}
		})
	}
	t.Run("TooNarrow", func(t *testing.T) { // cut at the edge, not painted
		f := busy
		f.Failed = 0
		if line := statsLine(f, 12); line != "  cost 1234…" {
			t.Errorf("line at 12 columns %q", line)
		}
	})
}

// TestProgressBarEightyColumns draws the bar on a terminal of 80 columns:
// no line of any frame is wider, and the cost is there whole, even with a
// long job name and an outage.
func TestProgressBarEightyColumns(t *testing.T) {
	term := &testterm.Sized{Width: 80}
	name := "a-very-long-job-name-from-a-dataset-file-2026-01-01"
	f := progressFigures{Name: name, Done: 123456, Total: 200000, Percent: 61.7, Failed: 1234, Retrying: 340,
		ReqRate: 123.4, TokRate: 45678, ETA: "1h2m3s", Concurrency: 32, MaxConcurrency: 32, Cost: "1234.5678 USD",
		Outage: "127.0.0.1:1 unreachable (connection refused)", OutageFor: 130 * time.Second, NextProbeIn: 40 * time.Second}
	width, ok := barWidth(term)
	if !ok || width != 80 {
		t.Fatalf("barWidth = %d, %v; want 80, true", width, ok)
	}
	bar := newProgressBar(name, f.Total, false, term, width)
	bar.show(f)
	waitUntil(t, 5*time.Second, "the first frame", func() bool { return strings.Contains(term.String(), "cost ") })
	bar.finish(f)
	plain := regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`).ReplaceAllString(term.String(), "")
	for _, line := range strings.Split(plain, "\n") {
		if n := utf8.RuneCountInString(line); n > 80 {
			t.Errorf("a line of %d columns: %q", n, line)
		}
	}
	for _, want := range []string{"a-very-long-job-name-fr… [", "] 123456/200000 61.7% paused\n",
		"\n  paused: 127.0.0.1:1 unreacha… for 2m10s; next probe in 40s, cost 1234.5678 USD\n"} {
		if !strings.Contains(plain, want) {
			t.Errorf("frames lack %q:\n%s", want, plain)
		}
	}
}

// TestProgressZeroSizeTerminal: a terminal that reports 0×0 gets the log
// lines, not a bar of no width.
func TestProgressZeroSizeTerminal(t *testing.T) {
	term := &testterm.Sized{Width: 0}
	st := jobs.Stats{Job: jobs.Job{Name: "j", Total: 10}}
	stop := StartProgress(context.Background(), NewProgressMeter(st, jobs.Prices{}, time.Now()),
		func() jobs.Progress { return progressAt(3, 300) }, ProgressOptions{LogInterval: time.Hour}, term)
	stop()
	out := term.String()
	if strings.Contains(out, "\x1b") || strings.Count(out, "llmbatch: job j: 3/10 done") != 1 {
		t.Errorf("a 0×0 terminal got %q; want one log line and no escape code", out)
	}
	// A real terminal of no size: a pseudo-terminal's master side, which
	// reports 0×0 until someone sets its size.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to try: %v", err)
	}
	defer ptmx.Close()
	if !IsTerminal(ptmx) {
		t.Skip("/dev/ptmx is no character device here")
	}
	if _, ok := barWidth(ptmx); ok {
		t.Error("barWidth says a 0×0 pseudo-terminal can show the bar")
	}
}
