package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
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

func TestProgressLog(t *testing.T) {
	// 20 requests, 2 at a time, 100 ms each: about a second. prompt-3 gets
	// a 400, which fails it for good.
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 100 * time.Millisecond,
		Script: func(c fakeapi.Call) fakeapi.Fault {
			if c.CustomKey == "prompt-3" {
				return fakeapi.Fault{Status: 400}
			}
			return fakeapi.Fault{}
		}})
	dir := t.TempDir()
	file := writeLines(t, dir, "p.jsonl", chatLines(20)...)

	t.Run("Log", func(t *testing.T) {
		db := filepath.Join(dir, "log.db")
		args := append(runArgs(db, srv, file), "--concurrency", "2", "--log-interval", "200ms",
			"--price", "deepseek/deepseek-v3=1000000:1000000", "--currency", "EUR")
		start := time.Now()
		res := runCLI(t, keyEnv(), args...)
		took := time.Since(start)
		if res.code != exitSomeFailed {
			t.Fatalf("exit %d, want %d\n%s", res.code, exitSomeFailed, res.stderr)
		}
		lines := progressLines(res.stderr, "p")
		// One line every 200 ms, and the final one when the run ends.
		if want := int(took/(200*time.Millisecond)) + 1; len(lines) < 3 || len(lines) > want {
			t.Fatalf("got %d progress lines in %s, want 3 to %d:\n%s", len(lines), took, want, res.stderr)
		}
		last := lines[len(lines)-1]
		// At one currency unit a token (no cached price), the cost is the
		// total tokens the job recorded.
		u := statusJSON(t, db, "p")["usage"].(map[string]any)
		cost := fmt.Sprintf(", ETA 0s, cost %.4f EUR", u["total_tokens"].(float64))
		for _, want := range []string{"20/20 done (100.0%), 1 failed, 0 retrying, ", "/s over the last minute, concurrency 2", cost} {
			if !strings.Contains(last, want) {
				t.Errorf("last line %q lacks %q", last, want)
			}
		}
		if first := lines[0]; strings.Contains(first, "20/20") {
			t.Errorf("first line %q: the run was already over", first)
		}
	})
	t.Run("Quiet", func(t *testing.T) {
		db := filepath.Join(dir, "quiet.db")
		res := runCLI(t, keyEnv(), append(runArgs(db, srv, file), "--concurrency", "2", "--log-interval", "200ms", "--quiet")...)
		if res.code != exitSomeFailed {
			t.Fatalf("exit %d, want %d\n%s", res.code, exitSomeFailed, res.stderr)
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
