package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// offline returns the command that runs the binary with args in a network
// namespace of its own, where only loopback is up, when this machine lets
// a test make one (unshare(1) and ip(8), as root or with user
// namespaces); else the binary as it is.
func offline(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	bin := binary(t)
	if err := exec.Command("unshare", "-rn", "sh", "-c", "ip link set lo up").Run(); err != nil {
		t.Logf("no network namespace here (%v): the demo runs with the machine's network, its base URL env pointing nowhere", err)
		return exec.Command(bin, args...)
	}
	return exec.Command("unshare", append([]string{"-rn", "sh", "-c", `ip link set lo up && exec "$0" "$@"`, bin}, args...)...)
}

// `llmbatch demo` in an empty folder, with no key, no network (where a
// namespace can cut it off) and LLMBATCH_DB and OPENAI_BASE_URL set to
// places it must not use: it runs its job to the end in well under a
// minute, says the answers are not from a model, names the commands to
// try next, and status, export and report work on its database.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	cmd := offline(t, "demo")
	cmd.Dir = dir
	cmd.Env = binEnv(dir, "OPENAI_API_KEY=", "OPENAI_BASE_URL=http://127.0.0.1:1/v1", "LLMBATCH_DB="+filepath.Join(dir, "mine.db"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("demo: %v (after %s)\nstdout:\n%s\nstderr:\n%s", err, took, stdout.String(), stderr.String())
	}
	if took > 30*time.Second {
		t.Errorf("the demo took %s, want well under a minute", took)
	}
	out, errs := stdout.String(), stderr.String()
	intro, outro, ok := strings.Cut(out, "llmbatch demo: done.")
	if !ok || !strings.Contains(intro, "NOT from a model") || !strings.Contains(outro, "not from a model") {
		t.Errorf("the demo should say before and after that the answers are not from a model:\n%s", out)
	}
	bin := binary(t)
	for _, want := range []string{bin + " --db llmbatch-demo.db status demo ", bin + " --db llmbatch-demo.db export demo ",
		bin + " --db llmbatch-demo.db report demo ", bin + " demo ", "Ctrl-C",
		"OPENAI_API_KEY=sk-... " + bin + " run examples/chat.jsonl "} {
		if !strings.Contains(outro, want) {
			t.Errorf("the commands to try next lack %q:\n%s", want, outro)
		}
	}
	for _, want := range []string{"llmbatch: job demo: imported 24 requests", "llmbatch: job demo: 429 rate_limited: ",
		" done (", "llmbatch: job demo: 24 succeeded, 0 failed, 0 cancelled, 0 pending of 24"} {
		if !strings.Contains(errs, want) {
			t.Errorf("the run's messages lack %q:\n%s", want, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "mine.db")); err == nil {
		t.Errorf("the demo wrote to the database LLMBATCH_DB names")
	}
	db := filepath.Join(dir, "llmbatch-demo.db")
	if n := count(t, statusJSON(t, db, "demo"), "succeeded"); n != 24 {
		t.Errorf("status: %d succeeded, want 24", n)
	}
	if lines := exportJSONL(t, db, "demo", "openai"); len(lines) != 24 {
		t.Errorf("export: %d lines, want 24", len(lines))
	}
	if res := runCLI(t, nil, "--db", db, "report", "demo", "-o", filepath.Join(dir, "report.html")); res.Code != 0 {
		t.Errorf("report: exit %d\n%s", res.Code, res.Stderr)
	}
}

// A demo interrupted while it runs resumes with `llmbatch demo`, as its
// hint says, to exactly one answer per request, without telling the user
// that its stand-in's URL changed (it listens on a new port each time).
func TestDemoResumes(t *testing.T) {
	dir := t.TempDir()
	env := binEnv(dir, "OPENAI_API_KEY=", "OPENAI_BASE_URL=http://127.0.0.1:1/v1")
	p := startBinary(t, dir, env, "demo")
	db := filepath.Join(dir, "llmbatch-demo.db")
	waitUntil(t, time.Minute, "a few demo answers", func() bool {
		return strings.Contains(p.stderr.String(), "429 rate_limited")
	})
	p.signal(os.Interrupt)
	p.expect(exitInterrupted, time.Minute)
	if !strings.Contains(p.stderr.String(), "run `"+binary(t)+" demo` to continue") {
		t.Fatalf("the interrupted demo does not say how to resume:\n%s", p.stderr.String())
	}
	done := count(t, statusJSON(t, db, "demo"), "succeeded")
	if done >= 24 {
		t.Skipf("the demo finished (%d answers) before it could be interrupted", done)
	}
	res := runBinary(t, dir, env, "demo")
	if res.Code != 0 {
		t.Fatalf("demo again: exit %d\n%s", res.Code, res.Stderr)
	}
	if strings.Contains(res.Stderr, "base URL changed") || strings.Contains(res.Stderr, "old URL") {
		t.Errorf("the resumed demo talks about its stand-in's URL:\n%s", res.Stderr)
	}
	if !strings.Contains(res.Stderr, "llmbatch: job demo: 24 succeeded, 0 failed, 0 cancelled, 0 pending of 24") {
		t.Errorf("the resumed demo did not finish its own job:\n%s", res.Stderr)
	}
	if n := count(t, statusJSON(t, db, "demo"), "succeeded"); n != 24 {
		t.Errorf("status: %d succeeded, want 24", n)
	}
}
