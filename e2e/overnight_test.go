package e2e

// The tests in this file leave a job as a user leaves an overnight run, and
// check that what happens while nobody watches is what they would expect:
// the job remembers where it sends, an outage pauses it, a cancel accounts
// for every request, and status says how the last run ended.

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/clitest"
	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// TestOutageMidRunPausesAndResumes: the server refuses connections for 20 s
// in the middle of a 2,000-request run and comes back. The run pauses,
// says why, probes, and ends with every request answered, none failed,
// and no request having used more than two attempts.
func TestOutageMidRunPausesAndResumes(t *testing.T) {
	binary(t)
	const n = 2000
	dir := t.TempDir()
	var calls atomic.Int64
	var srv *fakeapi.Server
	srv = fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 10 * time.Millisecond,
		Script: func(c fakeapi.Call) fakeapi.Fault {
			if calls.Add(1) == n/3 {
				go srv.Down(20 * time.Second)
			}
			return fakeapi.Fault{}
		}})
	file := writeLines(t, dir, "night.jsonl", chatLines(n)...)
	db := filepath.Join(dir, "night.db")
	p := startBinary(t, dir, binEnv(dir), "--db", db, "run", "--base-url", srv.URL(), "--log-interval", "1s", file)
	p.expect(0, 3*time.Minute)
	st := statusJSON(t, db, "night")
	if count(t, st, "succeeded") != n || count(t, st, "failed") != 0 {
		t.Errorf("counts %v, want all %d succeeded, none failed", st["counts"], n)
	}
	if most := queryInt(t, db, `SELECT max(attempts) FROM requests`); most > 2 {
		t.Errorf("a request used %d attempts, want at most 2: failures during the pause use none", most)
	}
	host := strings.TrimPrefix(strings.TrimSuffix(srv.URL(), "/v1"), "http://")
	if want := "paused: " + host + " unreachable (connection refused)"; !strings.Contains(p.stderr.String(), want) {
		t.Errorf("the log lines never say %q:\n%s", want, p.stderr.String())
	}
	t.Logf("%s in %s; %d calls; the last line: %s", fmt.Sprint(n), time.Since(p.started).Round(time.Second),
		srv.Stats().Calls, lastLine(p.stderr.String()))
}

// resumeHint is the command an interrupted run printed to continue.
var resumeHint = regexp.MustCompile("run `(llmbatch [^`]*)` to continue")

// TestJobRemembersItsBaseURL: a job created with --base-url, interrupted,
// then resumed exactly as the hint says, with $OPENAI_BASE_URL naming
// another server, goes on sending to its own server (the key never reaches
// the other one). A resume that names a new --base-url says so on its
// first line and sends there from then on.
func TestJobRemembersItsBaseURL(t *testing.T) {
	binary(t)
	dir := t.TempDir()
	own := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 100 * time.Millisecond})
	var otherCalls atomic.Int64
	other := fakeapi.Start(t, fakeapi.Config{Script: func(fakeapi.Call) fakeapi.Fault {
		otherCalls.Add(1)
		return fakeapi.Fault{}
	}})
	file := writeLines(t, dir, "in.jsonl", chatLines(60)...)
	db := filepath.Join(dir, "in.db")
	p := startBinary(t, dir, binEnv(dir), "--db", db, "run", "--base-url", own.URL(), "--concurrency", "4", file)
	waitUntil(t, time.Minute, "some answers", func() bool { return own.Stats().Served >= 8 })
	p.signal(os.Interrupt)
	p.expect(exitInterrupted, time.Minute)
	m := resumeHint.FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no resume hint:\n%s", p.stderr.String())
	}
	args := strings.Fields(m[1])[1:]
	res := runBinary(t, dir, binEnv(dir, "OPENAI_BASE_URL="+other.URL()), args...)
	if res.Code != 0 {
		t.Fatalf("%s: exit %d\n%s", m[1], res.Code, res.Stderr)
	}
	if n := otherCalls.Load(); n != 0 {
		t.Errorf("the resume sent %d requests to $OPENAI_BASE_URL, not to the job's own server", n)
	}
	if got := count(t, statusJSON(t, db, "in"), "succeeded"); got != 60 {
		t.Errorf("%d succeeded, want 60", got)
	}

	// A second job, moved to the other server midway (other prompts, so
	// that the cache answers none of them).
	lines := chatLines(100)[60:]
	moved := writeLines(t, dir, "moved.jsonl", lines...)
	p = startBinary(t, dir, binEnv(dir), "--db", db, "run", "--base-url", own.URL(), "--concurrency", "4", moved)
	waitUntil(t, time.Minute, "some answers", func() bool { return own.Stats().Served >= 68 })
	p.signal(os.Interrupt)
	p.expect(exitInterrupted, time.Minute)
	res = runBinary(t, dir, binEnv(dir), "--db", db, "run", "--base-url", other.URL(), "moved")
	if res.Code != 0 {
		t.Fatalf("resume with a new --base-url: exit %d\n%s", res.Code, res.Stderr)
	}
	first, _, _ := strings.Cut(res.Stderr, "\n")
	if want := "base URL changed: " + own.URL() + " → " + other.URL(); !strings.Contains(first, want) {
		t.Errorf("the first line does not say %q:\n%s", want, res.Stderr)
	}
	if otherCalls.Load() == 0 {
		t.Error("the new --base-url got no request")
	}
	res = runBinary(t, dir, binEnv(dir), "--db", db, "run", "moved")
	if res.Code != 0 || strings.Contains(res.Stderr, "base URL changed") {
		t.Errorf("a resume without --base-url: exit %d, or it changed the URL again:\n%s", res.Code, res.Stderr)
	}
}

// TestResumeRefusesChangedShape: flags that shape what is sent, given on a
// resume with other values than the job was created with, are refused by
// name; the stored --stream is used when a resume does not repeat it.
func TestResumeRefusesChangedShape(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, RecordBodies: true})
	file := writeLines(t, dir, "s.jsonl", chatLines(4)...)
	db := filepath.Join(dir, "s.db")
	if res := runCLI(t, keyEnv(), append(runArgs(db, srv, "--stream", "--model", "m1", "--job", "s", file), "-q")...); res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	res := runCLI(t, keyEnv(), runArgs(db, srv, "--model", "m2", "--stream=false", "s")...)
	if res.Code != exitError {
		t.Fatalf("resume with other flags: exit %d, want %d\n%s", res.Code, exitError, res.Stderr)
	}
	for _, want := range []string{`--model: "m1" → "m2"`, `--stream: "true" → "false"`} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("the refusal does not name %q:\n%s", want, res.Stderr)
		}
	}
	// The same flags again are no change.
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--model", "m1", "--stream", "-q", "s")...); res.Code != 0 {
		t.Errorf("resume with the same flags: exit %d\n%s", res.Code, res.Stderr)
	}
	// retry, then resume without --stream: the job still streams.
	srv.Reset()
	mustCLI(t, nil, "--db", db, "retry", "s")
	execSQL(t, db, `UPDATE requests SET status = 'pending' WHERE custom_id = 'req-1'`)
	execSQL(t, db, `DELETE FROM results WHERE request_id = (SELECT id FROM requests WHERE custom_id = 'req-1')`)
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "-q", "s")...); res.Code != 0 {
		t.Fatalf("resume: exit %d\n%s", res.Code, res.Stderr)
	}
	bodies := srv.Bodies()
	if len(bodies) != 1 || !bytes.Contains(bodies[0], []byte(`"stream":true`)) {
		t.Errorf("the resume sent %q, want one request with the job's stored \"stream\":true", bodies)
	}
}

// TestJobStoresPrices: prices given to run are kept with the job; status
// and report price with them unasked, and a flag still overrides them.
func TestJobStoresPrices(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "p.jsonl", chatLines(5)...)
	db := filepath.Join(dir, "p.db")
	res := runCLI(t, keyEnv(), append(runArgs(db, srv, file), "--price", "deepseek/deepseek-v3=1000:2000", "--currency", "EUR", "-q")...)
	if res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	// 5 × (4 prompt × 1000 + 2 completion × 2000) per million = 0.04.
	st := mustCLI(t, nil, "--db", db, "status", "p")
	if !strings.Contains(st, "0.0400 EUR") {
		t.Errorf("status without --price does not show the stored cost 0.0400 EUR:\n%s", st)
	}
	st = mustCLI(t, nil, "--db", db, "status", "p", "--price", "deepseek/deepseek-v3=2000:4000")
	if !strings.Contains(st, "0.0800 EUR") {
		t.Errorf("status --price does not override the stored price (want 0.0800 EUR):\n%s", st)
	}
	report := filepath.Join(dir, "p.html")
	mustCLI(t, nil, "--db", db, "report", "p", "-o", report)
	if b, err := os.ReadFile(report); err != nil || !bytes.Contains(b, []byte("0.0400 EUR")) {
		t.Errorf("the report does not show the stored cost (%v)", err)
	}
	res = runCLI(t, keyEnv(), append(runArgs(db, srv, "p"), "--price", "typo/model=1:1", "-q")...)
	if !strings.Contains(res.Stderr, `--price names model "typo/model", which no request of job p asks for`) {
		t.Errorf("no warning for a price no request uses:\n%s", res.Stderr)
	}
}

// TestCancelDuringRun: a cancel while a run works the job, with requests
// in flight and others waiting on a backoff, ends with every request
// cancelled or finished, none pending, and every custom_id in the export
// or its errors file.
func TestCancelDuringRun(t *testing.T) {
	binary(t)
	const n = 300
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 50 * time.Millisecond,
		Script: func(c fakeapi.Call) fakeapi.Fault {
			if c.N%7 == 0 {
				return fakeapi.Fault{Status: 500} // some wait on a backoff
			}
			return fakeapi.Fault{}
		}})
	file := writeLines(t, dir, "c.jsonl", chatLines(n)...)
	db := filepath.Join(dir, "c.db")
	p := startBinary(t, dir, binEnv(dir), "--db", db, "run", "--base-url", srv.URL(), "--concurrency", "8",
		"--retry-delay", "2s", "--max-retry-delay", "2s", file)
	waitUntil(t, time.Minute, "some answers", func() bool { return srv.Stats().Served >= 40 })
	if res := runBinary(t, dir, binEnv(dir), "--db", db, "cancel", "c"); res.Code != 0 || !strings.Contains(res.Stdout, "stops claiming") {
		t.Fatalf("cancel: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	p.expect(exitSomeFailed, time.Minute)
	st := statusJSON(t, db, "c")
	if left := count(t, st, "pending") + count(t, st, "running"); left != 0 {
		t.Errorf("%d requests left pending or running after the cancel: %v", left, st["counts"])
	}
	if c := count(t, st, "cancelled"); c == 0 || c == n {
		t.Errorf("%d cancelled of %d, want some (the run had answered some)", c, n)
	}
	errs := filepath.Join(dir, "errors.jsonl")
	out := mustCLI(t, nil, "--db", db, "export", "c", "--errors", errs)
	errLines, err := os.ReadFile(errs)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, l := range append(decodeLines(t, out), decodeLines(t, string(errLines))...) {
		seen[l["custom_id"].(string)]++
	}
	for i := range n {
		if id := fmt.Sprintf("req-%d", i); seen[id] != 1 {
			t.Errorf("%s appears %d times in the export and its errors file, want once", id, seen[id])
		}
	}
	if end := st["last_run"].(map[string]any)["end"]; end != "cancelled" {
		t.Errorf("status last_run.end = %v, want cancelled", end)
	}
}

// TestStatusSaysHowTheRunEnded: killed (a dead run holds the lock),
// interrupted, finished.
func TestStatusSaysHowTheRunEnded(t *testing.T) {
	binary(t)
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 200 * time.Millisecond})
	file := writeLines(t, dir, "e.jsonl", chatLines(40)...)
	db := filepath.Join(dir, "e.db")
	args := []string{"--db", db, "run", "--base-url", srv.URL(), "--concurrency", "2", file}
	lastEnd := func() string {
		st := statusJSON(t, db, "e")
		return fmt.Sprint(st["last_run"].(map[string]any)["end"], " live=", st["run_live"])
	}
	p := startBinary(t, dir, binEnv(dir), args...)
	waitUntil(t, time.Minute, "an answer", func() bool { return srv.Stats().Served >= 2 })
	if got := lastEnd(); got != " live=true" {
		t.Errorf("during the run: %q, want no end yet and live", got)
	}
	p.kill()
	if got := lastEnd(); got != "killed live=false" {
		t.Errorf("after kill -9: %q, want killed", got)
	}
	p = startBinary(t, dir, binEnv(dir), args...)
	waitUntil(t, time.Minute, "more answers", func() bool { return srv.Stats().Served >= 6 })
	p.signal(os.Interrupt)
	p.expect(exitInterrupted, time.Minute)
	if got := lastEnd(); got != "interrupted live=false" {
		t.Errorf("after Ctrl-C: %q, want interrupted", got)
	}
	srv.SetConfig(fakeapi.Config{Key: testKey})
	startBinary(t, dir, binEnv(dir), args...).expect(0, time.Minute)
	if got := lastEnd(); got != "finished live=false" {
		t.Errorf("after the last run: %q, want finished", got)
	}
}

// TestLocalServerNeedsNoKey: with no key and a base URL on loopback (vLLM,
// llama.cpp), requests go without an Authorization header; to another
// host, no key is refused before anything is sent.
func TestLocalServerNeedsNoKey(t *testing.T) {
	dir := t.TempDir()
	fake := fakeapi.New(fakeapi.Config{})
	t.Cleanup(fake.Close)
	var withAuth atomic.Int64
	local := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			withAuth.Add(1)
		}
		fake.ServeHTTP(w, r)
	}))
	file := writeLines(t, dir, "l.jsonl", chatLines(3)...)
	db := filepath.Join(dir, "l.db")
	res := runCLI(t, map[string]string{}, "--db", db, "run", "--base-url", local+"/v1", "-q", file)
	if res.Code != 0 {
		t.Fatalf("run without a key against loopback: exit %d\n%s", res.Code, res.Stderr)
	}
	if n := withAuth.Load(); n != 0 {
		t.Errorf("%d requests carried an Authorization header without a key", n)
	}
	res = runCLI(t, map[string]string{}, "--db", db, "run", "--job", "remote", "--base-url", "https://api.example.invalid/v1", file)
	if res.Code != exitError || !strings.Contains(res.Stderr, "no API key for https://api.example.invalid/v1") {
		t.Errorf("no key for a remote server: exit %d\n%s", res.Code, res.Stderr)
	}
}

// TestRunCommandLineEdges: a missing file leaves no database behind; an
// empty key file says so; - reads standard input and needs --job.
func TestRunCommandLineEdges(t *testing.T) {
	binary(t)
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	db := filepath.Join(dir, "edge.db")
	res := runCLI(t, keyEnv(), "--db", db, "run", "--base-url", srv.URL(), filepath.Join(dir, "missing.jsonl"))
	if res.Code != exitError || !strings.Contains(res.Stderr, "missing.jsonl: no such file") {
		t.Errorf("missing file: exit %d\n%s", res.Code, res.Stderr)
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a run of a missing file left a database behind")
	}
	empty := writeFile(t, dir, "key.txt", "\n")
	file := writeLines(t, dir, "e.jsonl", chatLines(2)...)
	res = runCLI(t, nil, "--db", db, "run", "--base-url", srv.URL(), "--api-key-file", empty, file)
	if res.Code != exitError || !strings.Contains(res.Stderr, "--api-key-file "+empty+" is empty") {
		t.Errorf("empty key file: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := runBinary(t, dir, binEnv(dir), "--db", db, "import", "-"); res.Code != exitError || !strings.Contains(res.Stderr, "needs --job") {
		t.Errorf("import - without --job: exit %d\n%s", res.Code, res.Stderr)
	}
	lines, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	res = runBinaryInput(t, dir, binEnv(dir), lines, "--db", db, "run", "--base-url", srv.URL(), "--job", "piped", "-q", "-")
	if res.Code != 0 {
		t.Fatalf("run - from a pipe: exit %d\n%s", res.Code, res.Stderr)
	}
	if got := count(t, statusJSON(t, db, "piped"), "succeeded"); got != 2 {
		t.Errorf("%d succeeded from standard input, want 2", got)
	}
	bad := append(append([]byte{}, lines...), "{not json\n"...)
	res = runBinaryInput(t, dir, binEnv(dir), bad, "--db", db, "import", "--job", "bad", "-")
	if res.Code != exitError || !strings.Contains(res.Stderr, "-:3: ") {
		t.Errorf("an invalid line from standard input is not named -:3: exit %d\n%s", res.Code, res.Stderr)
	}
}

// runBinary runs the built binary to its end and returns what it printed.
func runBinary(t *testing.T, dir string, env []string, args ...string) clitest.Result {
	t.Helper()
	return runBinaryInput(t, dir, env, nil, args...)
}

// runBinaryInput is runBinary with stdin as the standard input.
func runBinaryInput(t *testing.T, dir string, env []string, stdin []byte, args ...string) clitest.Result {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, env, bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return clitest.Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
}

// httptestServer serves h on loopback for the test and returns its URL.
func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestResumeSaysWhenTheFirstIsDue: a resume whose pending requests all wait
// on a backoff says when the first is due, rather than seem to hang.
func TestResumeSaysWhenTheFirstIsDue(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "w.jsonl", chatLines(3)...)
	db := filepath.Join(dir, "w.db")
	mustCLI(t, nil, "--db", db, "import", file)
	due := time.Now().Add(2 * time.Second)
	execSQL(t, db, fmt.Sprintf(`UPDATE requests SET not_before = %d`, due.UnixMilli()))
	res := runCLI(t, keyEnv(), runArgs(db, srv, "-q", "w")...)
	if res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	if want := "all 3 pending requests wait on a backoff; the first is due at " + due.Format("15:04:05"); !strings.Contains(res.Stderr, want) {
		t.Errorf("stderr does not say %q:\n%s", want, res.Stderr)
	}
}

// TestEndpointNeverReached: a base URL nothing listens on stops the run
// within seconds with exit 1, a message naming the URL it tried and what
// to check, and every request still pending with no attempt used.
func TestEndpointNeverReached(t *testing.T) {
	dir := t.TempDir()
	file := writeLines(t, dir, "nowhere.jsonl", chatLines(20)...)
	db := filepath.Join(dir, "nowhere.db")
	start := time.Now()
	res := runCLI(t, keyEnv(), "--db", db, "run", "--base-url", "http://127.0.0.1:1/v1", "-q", file)
	if res.Code != exitError {
		t.Fatalf("exit %d, want %d\n%s", res.Code, exitError, res.Stderr)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("gave up after %s, want within seconds", d)
	}
	for _, want := range []string{"no answer from http://127.0.0.1:1/v1/chat/completions: connection refused",
		"check --base-url", "run nowhere`"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, res.Stderr)
		}
	}
	st := statusJSON(t, db, "nowhere")
	if count(t, st, "pending") != 20 || queryInt(t, db, `SELECT max(attempts) FROM requests`) != 0 {
		t.Errorf("counts %v; want all 20 pending with no attempt used", st["counts"])
	}
	if end := st["last_run"].(map[string]any)["end"]; end != "unreachable" {
		t.Errorf("last_run.end = %v, want unreachable", end)
	}
}

// TestImportThenRunStreams: a job made by import was never sent; its first
// run may say --stream, which the job then keeps.
func TestImportThenRunStreams(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, RecordBodies: true})
	file := writeLines(t, dir, "imp.jsonl", chatLines(2)...)
	db := filepath.Join(dir, "imp.db")
	mustCLI(t, nil, "--db", db, "import", file)
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--stream", "-q", "imp")...); res.Code != 0 {
		t.Fatalf("first run with --stream: exit %d\n%s", res.Code, res.Stderr)
	}
	for _, b := range srv.Bodies() {
		if !bytes.Contains(b, []byte(`"stream":true`)) {
			t.Errorf("sent %s, want a stream", b)
		}
	}
	res := runCLI(t, keyEnv(), runArgs(db, srv, "--stream=false", "imp")...)
	if res.Code != exitError || !strings.Contains(res.Stderr, `--stream: "true" → "false"`) {
		t.Errorf("a later run with --stream=false: exit %d\n%s", res.Code, res.Stderr)
	}
}

// TestWrongURLAfterCacheAnswers: answers copied from the cache say nothing
// of an endpoint: a job the cache partly answered, run against a base URL
// nothing listens on, still stops with exit 1 within seconds.
func TestWrongURLAfterCacheAnswers(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	db := filepath.Join(dir, "c.db")
	a := writeLines(t, dir, "a.jsonl", chatLines(20)...)
	mustCLI(t, keyEnv(), runArgs(db, srv, "-q", a)...)
	b := writeLines(t, dir, "b.jsonl", chatLines(25)...) // 20 the cache answers, 5 new
	res := runCLI(t, keyEnv(), "--db", db, "run", "--base-url", "http://127.0.0.1:1/v1", "-q", b)
	if res.Code != exitError || !strings.Contains(res.Stderr, "no answer from http://127.0.0.1:1/v1/chat/completions") {
		t.Errorf("exit %d, want %d and the URL never reached\n%s", res.Code, exitError, res.Stderr)
	}
}

// TestStandardInputNamesItself: requests read from standard input are
// named "-" in every message and stored error, also by --dry-run and
// --skip-invalid, never by the temporary file they were copied to.
func TestStandardInputNamesItself(t *testing.T) {
	binary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "in.db")
	lines := []byte("{not json\n" + `{"model":"m","messages":[{"role":"user","content":"hi"}]}` + "\n")
	res := runBinaryInput(t, dir, binEnv(dir), lines, "--db", db, "run", "--dry-run", "-")
	if res.Code != exitError || !strings.Contains(res.Stderr, "-:1: ") || strings.Contains(res.Stderr, "llmbatch-stdin") {
		t.Errorf("run --dry-run -: exit %d, want the invalid line named -:1\n%s", res.Code, res.Stderr)
	}
	res = runBinaryInput(t, dir, binEnv(dir), lines[10:], "--db", db, "import", "--dry-run", "-")
	if res.Code != 0 || !strings.Contains(res.Stdout, "dry run: - is valid") {
		t.Errorf("import --dry-run - of a valid line: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	res = runBinaryInput(t, dir, binEnv(dir), lines, "--db", db, "import", "--job", "sk", "--skip-invalid", "-")
	if res.Code != 0 || strings.Contains(res.Stderr, "llmbatch-stdin") {
		t.Fatalf("import --skip-invalid -: exit %d\n%s", res.Code, res.Stderr)
	}
	if out := mustCLI(t, nil, "--db", db, "export", "sk", "--format", "flat"); !strings.Contains(out, `"-:1: `) || strings.Contains(out, "llmbatch-stdin") {
		t.Errorf("the stored error does not name the input -:\n%s", out)
	}
}

// TestImportStoresPrices: prices given to import are the job's, as those
// given to run are.
func TestImportStoresPrices(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "ip.jsonl", chatLines(5)...)
	db := filepath.Join(dir, "ip.db")
	mustCLI(t, nil, "--db", db, "import", file, "--price", "deepseek/deepseek-v3=1000:2000", "--currency", "EUR")
	mustCLI(t, keyEnv(), runArgs(db, srv, "-q", "ip")...)
	if st := mustCLI(t, nil, "--db", db, "status", "ip"); !strings.Contains(st, "0.0400 EUR") {
		t.Errorf("status does not price with the prices given to import (want 0.0400 EUR):\n%s", st)
	}
}
