package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// scatteredServer answers in 15 ms and fails the first attempt of some
// requests: a 429 for one in eight (the one of prompt-5 echoing the API
// key, as some gateways do), a 500 for one in twenty.
func scatteredServer(t *testing.T) *fakeapi.Server {
	return fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 15 * time.Millisecond, Script: func(c fakeapi.Call) fakeapi.Fault {
		n, _ := strconv.Atoi(strings.TrimPrefix(c.CustomKey, "prompt-"))
		switch {
		case c.Attempt > 1:
			return fakeapi.Fault{}
		case n == 5:
			return fakeapi.Fault{Status: 429, Body: `{"error":{"message":"Rate limit reached for key ` + testKey +
				`","type":"requests","code":"rate_limit_exceeded"}}`}
		case n%8 == 1:
			return fakeapi.Fault{Status: 429, Header: map[string]string{"Retry-After": "0"}}
		case n%20 == 2:
			return fakeapi.Fault{Status: 500}
		}
		return fakeapi.Fault{}
	}})
}

// countLine is a count of the errors of one class since the last.
var countLine = regexp.MustCompile(`(?m)^llmbatch: job scattered: (\d+ )?([a-z_]+) ×(\d+) in the last \d+s: .+$`)

// A run with scattered 429s and 500s, logged to a pipe, tells the first
// of each class at once and then counts them at each --log-interval: the
// counts add up to the failed attempts recorded. The key, which one error
// body echoes, is in none of it.
func TestRunErrorsAsTheyHappen(t *testing.T) {
	dir := t.TempDir()
	srv := scatteredServer(t)
	db := filepath.Join(dir, "t.db")
	file := writeLines(t, dir, "scattered.jsonl", chatLines(240)...)
	p := startBinary(t, dir, binEnv(dir), runArgs(db, srv, "--concurrency", "4", "--log-interval", "300ms", file)...)
	p.expect(0, time.Minute)
	stderr := p.stderr.String()
	for _, first := range []string{
		"llmbatch: job scattered: 429 rate_limited: Rate limit reached",
		"llmbatch: job scattered: 500 server_error: fakeapi: injected 500\n",
	} {
		if n := strings.Count(stderr, first); n != 1 {
			t.Errorf("the first-occurrence line %q is there %d times, want once:\n%s", first, n, stderr)
		}
	}
	counted := map[string]int{}
	lines := countLine.FindAllStringSubmatch(stderr, -1)
	for _, m := range lines {
		n, _ := strconv.Atoi(m[3])
		counted[m[2]] += n
	}
	if len(lines) < 2 {
		t.Errorf("%d count lines, want some (the run lasts several log intervals):\n%s", len(lines), stderr)
	}
	for class, code := range map[string]int{"rate_limited": 429, "server_error": 500} {
		want := queryInt(t, db, fmt.Sprintf("SELECT count(*) FROM attempts WHERE status_code = %d", code))
		if want < 2 || counted[class] != want {
			t.Errorf("%s: counted %d in the count lines, %d attempts recorded", class, counted[class], want)
		}
	}
	if strings.Contains(stderr, testKey) || strings.Contains(p.stdout.String(), testKey) {
		t.Errorf("the API key is in the run's output:\n%s", stderr)
	}
}

// verboseLine is run --verbose's line for a failed attempt.
var verboseLine = regexp.MustCompile(`(?m)^llmbatch: job scattered: (req-\d+) attempt (\d+): (\d+) ([a-z_]+): (.*) \((retry .*|failed)\)$`)

// --verbose prints every failed attempt as it ends, with its custom_id,
// attempt number, status code, class and message (the key redacted), even
// with --quiet, which silences the rest.
func TestRunVerbose(t *testing.T) {
	dir := t.TempDir()
	srv := scatteredServer(t)
	db := filepath.Join(dir, "t.db")
	file := writeLines(t, dir, "scattered.jsonl", chatLines(80)...)
	p := startBinary(t, dir, binEnv(dir), runArgs(db, srv, "--concurrency", "4", "--verbose", "--quiet", file)...)
	p.expect(0, time.Minute)
	stderr := p.stderr.String()
	lines := verboseLine.FindAllStringSubmatch(stderr, -1)
	failed := queryInt(t, db, "SELECT count(*) FROM attempts WHERE error_class IS NOT NULL")
	if failed < 10 || len(lines) != failed {
		t.Fatalf("%d --verbose lines, %d failed attempts recorded:\n%s", len(lines), failed, stderr)
	}
	seen := map[string]bool{}
	for _, m := range lines {
		seen[m[1]] = true
		if m[2] != "1" || (m[3] == "429") != (m[4] == "rate_limited") {
			t.Errorf("line %q: want the first attempt, 429 with rate_limited", m[0])
		}
	}
	if !seen["req-5"] || !seen["req-1"] || !seen["req-2"] {
		t.Errorf("lines for %v; want req-1 (429), req-2 (500) and req-5 among them", seen)
	}
	if !strings.Contains(stderr, "llmbatch: job scattered: req-5 attempt 1: 429 rate_limited: Rate limit reached for key [REDACTED] (retry") {
		t.Errorf("the echoed key is not redacted in req-5's line:\n%s", stderr)
	}
	if strings.Contains(stderr, testKey) {
		t.Errorf("the API key is in the output:\n%s", stderr)
	}
	if strings.Contains(stderr, " done (") || strings.Contains(stderr, "×") {
		t.Errorf("--quiet shows progress or counts:\n%s", stderr)
	}
}
