package e2e

// End-to-end test of `llmbatch copy` with the real binary: a job started
// on SQLite, interrupted, handed to PostgreSQL, continued there, and
// brought back to SQLite for an offline look.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/internal/pgtest"
)

// copyScript is the fake's word on the copy test's prompts: every tenth
// (prompt-3, -13, …) is refused for good, and every tenth from prompt-5
// gets a 500 on its first attempt.
func copyScript(c fakeapi.Call) fakeapi.Fault {
	var i int
	if _, err := fmt.Sscanf(c.CustomKey, "prompt-%d", &i); err != nil {
		return fakeapi.Fault{}
	}
	switch {
	case i%10 == 3:
		return fakeapi.Fault{Status: 400}
	case i%10 == 5 && c.Attempt == 1:
		return fakeapi.Fault{Status: 500}
	}
	return fakeapi.Fault{}
}

// TestCopySQLiteToPostgresAndBack: a streamed job run on SQLite and
// interrupted (a copy while it runs is refused, naming the run) is copied
// to PostgreSQL; there status, report and every export read exactly as on
// SQLite, and the printed command continues it to its end, retries
// included, while the SQLite job stays as it was; a copy back to SQLite
// exports what PostgreSQL does.
func TestCopySQLiteToPostgresAndBack(t *testing.T) {
	const n = 80
	pg := pgtest.DSN(t)
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 40 * time.Millisecond, Script: copyScript})
	lines := chatLines(n)
	lines[7].(map[string]any)["metadata"] = map[string]any{"row": 7}
	lines = append(lines, `{"custom_id": "broken", "model": `)
	file := writeLines(t, dir, "night.jsonl", lines...)
	db := filepath.Join(dir, "night.db")
	p := startBinary(t, dir, binEnv(dir), "--db", db, "run", "--base-url", srv.URL(), "--stream", "--skip-invalid",
		"--concurrency", "2", "--retry-delay", "200ms", file)
	waitUntil(t, time.Minute, "20 answers", func() bool { return p.exited() || srv.Stats().Served >= 20 })
	res := runBinary(t, dir, binEnv(dir), "--db", db, "copy", "night", "--to", pg)
	if want := fmt.Sprintf("live run (pid %d", p.pid()); res.Code != exitError || !strings.Contains(res.Stderr, want) {
		t.Errorf("copy while the run works the job: exit %d, want %d naming %q\n%s", res.Code, exitError, want, res.Stderr)
	}
	p.signal(os.Interrupt)
	p.expect(exitInterrupted, time.Minute)
	before := statusOf(t, dir, db, "night")

	res = runBinary(t, dir, binEnv(dir), "--db", db, "copy", "night", "--to", pg)
	if res.Code != 0 || !strings.Contains(res.Stdout, fmt.Sprintf("%d requests (1 kept invalid)", n+1)) {
		t.Fatalf("copy to PostgreSQL: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	t.Logf("%s", res.Stdout)
	if got := statusOf(t, dir, pg, "night"); !reflect.DeepEqual(got, before) {
		t.Errorf("status on PostgreSQL:\n%v\nwant SQLite's\n%v", got, before)
	}
	sameFiles(t, dir, db, pg, "night")

	cont := printedCommand(t, res.Stdout, "continue it: ")
	if res := runBinary(t, dir, binEnv(dir), cont...); res.Code != exitSomeFailed {
		t.Fatalf("%v: exit %d, want %d\n%s", cont, res.Code, exitSomeFailed, res.Stderr)
	}
	after := statusOf(t, dir, pg, "night")
	if c := after["counts"].(map[string]any); c["pending"] != 0.0 || c["succeeded"] != float64(n-n/10) || c["failed"] != float64(n/10+1) {
		t.Errorf("after the run on PostgreSQL: counts %v, want every request final, %d succeeded", c, n-n/10)
	}
	if got := statusOf(t, dir, db, "night"); !reflect.DeepEqual(got, before) {
		t.Errorf("the SQLite job changed after the copy:\n%v\nwant\n%v", got, before)
	}
	if fs := srv.Stats(); len(fs.DuplicateKeys()) != 0 {
		t.Errorf("the fake answered %d prompts twice: the copy's run sent what the original had answered", len(fs.DuplicateKeys()))
	}

	back := filepath.Join(dir, "back.db")
	res = runBinary(t, dir, binEnv(dir), "--db", back, "copy", "night", "--from", pg)
	if res.Code != 0 {
		t.Fatalf("copy back: exit %d\n%s", res.Code, res.Stderr)
	}
	sameFiles(t, dir, pg, back, "night")
}

// statusOf is `status --json` of the job, without what depends on the
// moment it was read.
func statusOf(t *testing.T, dir, db, job string) map[string]any {
	t.Helper()
	res := runBinary(t, dir, binEnv(dir), "--db", db, "status", "--json", job)
	if res.Code != 0 {
		t.Fatalf("status %s: exit %d\n%s", job, res.Code, res.Stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(res.Stdout), &m); err != nil {
		t.Fatalf("status --json: %v\n%s", err, res.Stdout)
	}
	for _, k := range []string{"at", "last_1m", "last_5m"} { // as of the moment of reading
		delete(m["throughput"].(map[string]any), k)
	}
	return m
}

// copyExports are the exports a copy writes byte for byte as its original.
var copyExports = [][]string{
	{"--format", "openai", "--errors", "ERRORS"},
	{"--format", "flat", "--with-request"},
	{"--format", "merged", "--with-request"},
	{"--format", "csv", "--with-request"},
	{"--format", "parquet", "--with-request"},
}

// generated is the report's line that says when it was written.
var generated = regexp.MustCompile(`<dt>generated</dt><dd>[^<]*</dd>`)

// sameFiles fails t unless every export and the report of the job are
// the same bytes from db as from other (the report's time of writing
// aside).
func sameFiles(t *testing.T, dir, db, other, job string) {
	t.Helper()
	write := func(db, name string, args ...string) []byte {
		out := filepath.Join(dir, name)
		args = append([]string{"--db", db}, args...)
		for i := range args {
			args[i] = strings.ReplaceAll(strings.ReplaceAll(args[i], "OUT", out), "ERRORS", out+".errors")
		}
		if res := runBinary(t, dir, binEnv(dir), args...); res.Code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, res.Code, res.Stderr)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		errs, _ := os.ReadFile(out + ".errors")
		return append(data, errs...)
	}
	for i, args := range copyExports {
		name := fmt.Sprintf("export-%d", i)
		want := write(db, name+"-a", append([]string{"export", job, "-o", "OUT"}, args...)...)
		got := write(other, name+"-b", append([]string{"export", job, "-o", "OUT"}, args...)...)
		if len(want) == 0 || !bytes.Equal(got, want) {
			t.Errorf("export %v: %d bytes, want the original's %d, byte for byte", args, len(got), len(want))
		}
	}
	want := generated.ReplaceAll(write(db, "report-a.html", "report", job, "-o", "OUT"), nil)
	got := generated.ReplaceAll(write(other, "report-b.html", "report", job, "-o", "OUT"), nil)
	if !bytes.Equal(got, want) {
		t.Errorf("report: %d bytes, want the original's %d, byte for byte", len(got), len(want))
	}
}

// printedCommand finds the line of out that starts with prefix and reads
// the command after it as a shell would (single quotes only).
func printedCommand(t *testing.T, out, prefix string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		cmd, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		var args []string
		for _, f := range strings.Fields(cmd) {
			args = append(args, strings.Trim(f, "'"))
		}
		if len(args) < 2 || args[0] != "llmbatch" {
			t.Fatalf("%q is no llmbatch command", cmd)
		}
		return args[1:]
	}
	t.Fatalf("no line %q in:\n%s", prefix, out)
	return nil
}
