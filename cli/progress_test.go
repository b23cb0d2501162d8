package cli

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/internal/testterm"
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
		if res.Code != ExitSomeFailed {
			t.Fatalf("exit %d, want %d\n%s", res.Code, ExitSomeFailed, res.Stderr)
		}
		if strings.Contains(res.Stderr, "\x1b") {
			t.Errorf("escape codes in a log that is no terminal:\n%q", res.Stderr)
		}
		lines := progressLines(res.Stderr, "p")
		// One line every 200 ms, and the final one when the run ends.
		if want := int(took/(200*time.Millisecond)) + 1; len(lines) < 3 || len(lines) > want {
			t.Fatalf("got %d progress lines in %s, want 3 to %d:\n%s", len(lines), took, want, res.Stderr)
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
		if res.Code != ExitSomeFailed {
			t.Fatalf("exit %d, want %d\n%s", res.Code, ExitSomeFailed, res.Stderr)
		}
		if lines := progressLines(res.Stderr, "p"); len(lines) > 0 {
			t.Errorf("--quiet printed %d progress lines:\n%s", len(lines), res.Stderr)
		}
	})
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
		stderr := &testterm.Terminal{}
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
			"\x1b[31m1 failed\x1b[0m", ", 0 retrying, conc 2/2, cost ", "\x1b[2A\x1b[J", "\x1b[32m"} {
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
