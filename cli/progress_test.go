package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/worker"
	"github.com/vbauerster/mpb/v8/decor"
)

// progressLines returns the progress lines of a run's stderr.
func progressLines(stderr, job string) []string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "llmbatch: job "+job+": ") && strings.Contains(l, " done (") {
			lines = append(lines, l)
		}
	}
	return lines
}

// progressServer answers in 100 ms, and prompt-3 with a 400, which fails
// it for good.
func progressServer(t *testing.T) *fakeapi.Server {
	return fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 100 * time.Millisecond,
		Script: func(c fakeapi.Call) fakeapi.Fault {
			if c.CustomKey == "prompt-3" {
				return fakeapi.Fault{Status: 400}
			}
			return fakeapi.Fault{}
		}})
}

func TestProgressLog(t *testing.T) {
	// 20 requests, 2 at a time, 100 ms each: about a second.
	srv := progressServer(t)
	dir := t.TempDir()
	file := writeLines(t, dir, "p.jsonl", chatLines(20)...)

	t.Run("Log", func(t *testing.T) {
		db := filepath.Join(dir, "log.db")
		args := append(runArgs(db, srv, file), "--concurrency", "2", "--log-interval", "200ms",
			"--price", "deepseek/deepseek-v3=1000000:1000000", "--currency", "EUR")
		start := time.Now()
		res := runCLI(t, keyEnv(), args...)
		took := time.Since(start)
		if res.code != ExitSomeFailed {
			t.Fatalf("exit %d, want %d\n%s", res.code, ExitSomeFailed, res.stderr)
		}
		if strings.Contains(res.stderr, "\x1b") {
			t.Errorf("escape codes in a log that is no terminal:\n%q", res.stderr)
		}
		lines := progressLines(res.stderr, "p")
		// One line every 200 ms, and the final one when the run ends.
		if want := int(took/(200*time.Millisecond)) + 1; len(lines) < 3 || len(lines) > want {
			t.Fatalf("got %d progress lines in %s, want 3 to %d:\n%s", len(lines), took, want, res.stderr)
		}
		// Every line's figures hold together and never go back.
		var prev logFigures
		for _, l := range lines {
			f := parseLogLine(t, l)
			if f.total != 20 || f.done < prev.done || f.failed < prev.failed || f.failed > 1 || f.failed > f.done || f.concurrency < 1 || f.concurrency > f.maxConcurrency || f.maxConcurrency != 2 {
				t.Errorf("line %q after %+v", l, prev)
			}
			prev = f
		}
		// The last line's figures are the database's.
		last, status := lines[len(lines)-1], statusJSON(t, db, "p")
		if prev.done != 20 || prev.failed != int64(count(t, status, "failed")) || prev.retrying != 0 || prev.eta != "0s" {
			t.Errorf("last line %q: want 20 done, %d failed, 0 retrying, ETA 0s", last, count(t, status, "failed"))
		}
		// At one currency unit a token (no cached price), the cost is the
		// total tokens the job recorded.
		u := status["usage"].(map[string]any)
		if want := fmt.Sprintf("%.4f EUR", u["total_tokens"].(float64)); prev.cost != want {
			t.Errorf("last line %q: cost %q, want %q", last, prev.cost, want)
		}
		if prev.reqRate <= 0 || prev.tokRate <= 0 {
			t.Errorf("last line %q: no rate", last)
		}
		if first := parseLogLine(t, lines[0]); first.done == 20 {
			t.Errorf("first line %q: the run was already over", lines[0])
		}
	})
	t.Run("Quiet", func(t *testing.T) {
		db := filepath.Join(dir, "quiet.db")
		res := runCLI(t, keyEnv(), append(runArgs(db, srv, file), "--concurrency", "2", "--log-interval", "200ms", "--quiet")...)
		if res.code != ExitSomeFailed {
			t.Fatalf("exit %d, want %d\n%s", res.code, ExitSomeFailed, res.stderr)
		}
		if lines := progressLines(res.stderr, "p"); len(lines) > 0 {
			t.Errorf("--quiet printed %d progress lines:\n%s", len(lines), res.stderr)
		}
	})
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

// logFigures are the figures of a progress log line.
type logFigures struct {
	done, total, failed, retrying int64
	pct, reqRate, tokRate         float64
	concurrency, maxConcurrency   int
	eta, cost, pause              string
}

var logLineRE = regexp.MustCompile(`^llmbatch: job \S+: (\d+)/(\d+) done \(([\d.]+)%\), (\d+) failed, (\d+) retrying, ([\d.]+) req/s and (\d+) tok/s over the last minute, concurrency (\d+)/(\d+), ETA ([^,;]+)(?:, cost ([^;]+))?(?:; (paused: .+))?$`)

func parseLogLine(t *testing.T, line string) logFigures {
	t.Helper()
	m := logLineRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("progress line %q does not parse", line)
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(m[i], 10, 64); return v }
	x := func(i int) float64 { v, _ := strconv.ParseFloat(m[i], 64); return v }
	return logFigures{done: n(1), total: n(2), pct: x(3), failed: n(4), retrying: n(5), reqRate: x(6), tokRate: x(7),
		concurrency: int(n(8)), maxConcurrency: int(n(9)), eta: m[10], cost: m[11], pause: m[12]}
}

// fakeTerminal is a stderr that says it is a terminal.
type fakeTerminal struct{ syncBuffer }

func (f *fakeTerminal) IsTerminal() bool { return true }

// sgrRE matches an ANSI colour (SGR) escape code.
var sgrRE = regexp.MustCompile(`\x1b\[[0-9;]*m`)

func TestProgressBar(t *testing.T) {
	srv := progressServer(t)
	// 30 requests, 2 at a time, 100 ms each: 1.5 s at least, time for a
	// frame a second and the last.
	dir := t.TempDir()
	file := writeLines(t, dir, "p.jsonl", chatLines(30)...)
	run := func(t *testing.T, env map[string]string, extra ...string) string {
		t.Helper()
		db := filepath.Join(t.TempDir(), "bar.db")
		var stdout bytes.Buffer
		stderr := &fakeTerminal{}
		args := append([]string{"llmbatch"}, append(runArgs(db, srv, file), extra...)...)
		if code := Main(context.Background(), args, func(k string) string { return env[k] }, nil, &stdout, stderr); code != ExitSomeFailed {
			t.Fatalf("exit %d, want %d\n%s", code, ExitSomeFailed, stderr.String())
		}
		return stderr.String()
	}
	base := []string{"--concurrency", "2", "--log-interval", "100ms", "--price", "deepseek/deepseek-v3=1:2"}
	t.Run("Color", func(t *testing.T) {
		out := run(t, keyEnv(), base...)
		if lines := progressLines(out, "p"); len(lines) > 0 {
			t.Errorf("a terminal got %d log lines:\n%s", len(lines), out)
		}
		// The last frame: the bar's line and the figures' line.
		for _, want := range []string{"\np [", "] 30/30 100.0% ETA 0s", " req/s, ", " tok/s, ",
			colorRed + "1 failed" + colorReset, ", 0 retrying, conc 2/2, cost ", "\x1b[2A\x1b[J", colorGreen} {
			if !strings.Contains(out, want) {
				t.Errorf("terminal output lacks %q:\n%q", want, out)
			}
		}
	})
	t.Run("NoColor", func(t *testing.T) {
		env := keyEnv()
		env["NO_COLOR"] = "1"
		out := run(t, env, base...)
		if sgr := sgrRE.FindString(out); sgr != "" {
			t.Errorf("NO_COLOR set, but the output has colour %q:\n%q", sgr, out)
		}
		if !strings.Contains(out, "] 30/30 100.0% ETA 0s") || !strings.Contains(out, ", 1 failed, ") {
			t.Errorf("no final frame:\n%q", out)
		}
	})
	t.Run("Quiet", func(t *testing.T) {
		if out := run(t, keyEnv(), append(base, "--quiet")...); strings.Contains(out, "\x1b") || strings.Contains(out, "30/30") {
			t.Errorf("--quiet drew:\n%q", out)
		}
	})
}

// progressAt is the counters of a run that has finished done requests and
// seen tokens tokens.
func progressAt(done, tokens int64) worker.Progress {
	return worker.Progress{Succeeded: done, Tokens: tokens, Usage: map[string]jobs.Usage{},
		State: jobs.RunState{Concurrency: 4, MaxConcurrency: 8}}
}

func TestProgressMeterRates(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := jobs.Stats{Job: jobs.Job{Name: "j", Total: 10000},
		Counts: map[jobs.Status]int{jobs.StatusSucceeded: 90, jobs.StatusFailed: 10}}
	m := newProgressMeter(st, jobs.Prices{}, start)
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
	term := &fakeTerminal{}
	msgs := &messageWriter{w: term}
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
	m := newProgressMeter(st, jobs.Prices{}, time.Now())
	var out syncBuffer
	stop := startProgress(context.Background(), m, func() worker.Progress { return progressAt(200, 20000) },
		progressOptions{LogInterval: time.Hour}, &out)
	stop()
	f := parseLogLine(t, strings.TrimSpace(out.String()))
	if f.done != 210 || f.reqRate != 0 || f.tokRate != 0 || f.eta != "unknown" {
		t.Errorf("last line %+v; want 210 done, no rate (nothing finished while it was shown), ETA unknown", f)
	}
}

// sizedTerminal is a stderr that says it is a terminal of width columns.
type sizedTerminal struct {
	fakeTerminal
	width int
}

func (s *sizedTerminal) TerminalSize() (int, int) { return s.width, s.width / 3 }

// outageAt is the counters of a run paused by an outage since 2m10s
// before now, probing next 40s after now.
func outageAt(now time.Time) worker.Progress {
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
		p         func(time.Time) worker.Progress
		wantPause string
	}{
		{"Outage", outageAt, "paused: 127.0.0.1:1 unreachable (connection refused) for 2m10s; next probe in 40s"},
		{"Probing", func(now time.Time) worker.Progress {
			p := outageAt(now)
			p.State.NextProbe = now.Add(-time.Second)
			return p
		}, "paused: 127.0.0.1:1 unreachable (connection refused) for 2m10s; probing"},
		{"NotPaused", func(time.Time) worker.Progress { return progressAt(120, 9000) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newProgressMeter(st, jobs.Prices{}, now.Add(-time.Hour))
			f := m.measure(tt.p(now), now)
			got := parseLogLine(t, f.logLine())
			if got.pause != tt.wantPause || got.done != 120 {
				t.Errorf("log line %q: pause %q, want %q", f.logLine(), got.pause, tt.wantPause)
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
	term := &sizedTerminal{width: 80}
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
	term := &sizedTerminal{width: 0}
	st := jobs.Stats{Job: jobs.Job{Name: "j", Total: 10}}
	stop := startProgress(context.Background(), newProgressMeter(st, jobs.Prices{}, time.Now()),
		func() worker.Progress { return progressAt(3, 300) }, progressOptions{LogInterval: time.Hour}, term)
	stop()
	out := term.String()
	if strings.Contains(out, "\x1b") || len(progressLines(out, "j")) != 1 {
		t.Errorf("a 0×0 terminal got %q; want one log line and no escape code", out)
	}
	// A real terminal of no size: a pseudo-terminal's master side, which
	// reports 0×0 until someone sets its size.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to try: %v", err)
	}
	defer ptmx.Close()
	if !isTerminal(ptmx) {
		t.Skip("/dev/ptmx is no character device here")
	}
	if _, ok := barWidth(ptmx); ok {
		t.Error("barWidth says a 0×0 pseudo-terminal can show the bar")
	}
}
