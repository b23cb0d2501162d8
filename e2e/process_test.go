package e2e

// The tests in this file run the real binary in child processes, for what
// only a process can show: SIGKILL at any moment, the two-stage shutdown on
// SIGINT, two runs racing for one job, and the bytes a run leaves on disk.
// The fake API runs in this test process, so the tests can watch what it
// served.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	_ "github.com/mattn/go-sqlite3"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// built is the llmbatch binary, built at most once per test process.
var built struct {
	once      sync.Once
	dir, path string
	err       error
}

// binary builds the llmbatch binary (with -race when the tests run with it,
// so the child processes are checked too) and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	built.once.Do(func() {
		start := time.Now()
		built.dir, built.err = os.MkdirTemp("", "llmbatch-bin-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "llmbatch")
		args := []string{"build", "-o", built.path}
		if raceEnabled() {
			args = append(args, "-race")
		}
		// go test puts $GOROOT/bin first in the PATH of the tests.
		out, err := exec.Command("go", append(args, "github.com/llmbatch/llmbatch")...).CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("built %s (race %v) in %s", built.path, raceEnabled(), time.Since(start).Round(time.Millisecond))
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// binEnv is the whole environment of a child: PATH, HOME and the test key,
// never the caller's own OPENAI_API_KEY. Each "K=V" in extra replaces or
// adds a variable; "K=" removes K.
func binEnv(home string, extra ...string) []string {
	vars := map[string]string{"PATH": os.Getenv("PATH"), "HOME": home, "OPENAI_API_KEY": testKey}
	order := []string{"PATH", "HOME", "OPENAI_API_KEY"}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	var env []string
	for _, k := range order {
		if vars[k] != "" {
			env = append(env, k+"="+vars[k])
		}
	}
	return env
}

// syncBuffer is a bytes.Buffer that the child's output goroutine and the
// test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is a running llmbatch child process.
type proc struct {
	t              *testing.T
	name           string
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	started        time.Time
	done           chan struct{} // closed when Wait has returned
}

// startBinary starts llmbatch with args, in dir (its working directory),
// with exactly env. The test's cleanup kills it if it still runs.
func startBinary(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: "llmbatch " + strings.Join(args, " "), done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Dir, p.cmd.Env = dir, env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.WaitDelay = 10 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.started = time.Now()
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to end and returns its exit code; it fails the
// test if that takes longer than timeout, or if the race detector spoke.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("%s: still running after %s; killed\nstderr:\n%s", p.name, timeout, p.stderr.String())
	}
	p.checkRace()
	return p.cmd.ProcessState.ExitCode()
}

// expect waits for the process and fails the test unless it exits with want.
func (p *proc) expect(want int, timeout time.Duration) {
	p.t.Helper()
	if got := p.wait(timeout); got != want {
		p.t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", p.name, got, want, p.stdout.String(), p.stderr.String())
	}
}

// kill sends SIGKILL and checks that the signal, not a normal exit, ended
// the process.
func (p *proc) kill() {
	p.t.Helper()
	if p.exited() {
		p.t.Fatalf("%s: exited (%s) before it could be killed\nstderr:\n%s", p.name, p.cmd.ProcessState, p.stderr.String())
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("%s: kill: %v", p.name, err)
	}
	<-p.done
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		p.t.Fatalf("%s: ended by %s, not by SIGKILL\nstderr:\n%s", p.name, p.cmd.ProcessState, p.stderr.String())
	}
	p.checkRace()
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %s: %v", p.name, sig, err)
	}
}

func (p *proc) checkRace() {
	p.t.Helper()
	if s := p.stderr.String(); strings.Contains(s, "WARNING: DATA RACE") {
		p.t.Errorf("%s: the race detector reported:\n%s", p.name, s)
	}
}

// requestRow is one row of the requests table as the tests read it.
type requestRow struct {
	customID, status string
	attempts         int
}

// readRequests reads every request of the database at path directly, with
// a read-only connection: attempts are in no export.
func readRequests(t *testing.T, path string) []requestRow {
	t.Helper()
	db := openDB(t, path, false)
	defer db.Close()
	rows, err := db.Query(`SELECT custom_id, status, attempts FROM requests ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []requestRow
	for rows.Next() {
		var r requestRow
		if err := rows.Scan(&r.customID, &r.status, &r.attempts); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func integrityCheck(t *testing.T, path string) {
	t.Helper()
	db := openDB(t, path, false)
	defer db.Close()
	var got string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&got); err != nil || got != "ok" {
		t.Fatalf("integrity_check = %q, %v", got, err)
	}
}

// TestKillAndResume kills a run with SIGKILL at several moments of its life
// (while it opens the database, while it imports, and while answers arrive
// and are committed in groups), then lets one run finish, and checks
// that every request has exactly one recorded result and one counted
// attempt: calls are at least once, recorded results exactly once.
func TestKillAndResume(t *testing.T) {
	const n = 2000
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 8 * time.Millisecond})
	file := writeLines(t, dir, "kill.jsonl", chatLines(n)...)
	db := filepath.Join(dir, "kill.db")
	args := []string{"--db", db, "run", "--base-url", srv.URL(), "--concurrency", "16", file}
	// Each kill comes once the run has lived for at least after and, for a
	// kill meant to land mid-run, once it has been answered minServed times;
	// or as soon as it has been answered maxServed times, so that work is
	// always left for every kill (5 × 350 < 2000), however fast the machine.
	const minServed, maxServed = 20, 350
	kills := []struct {
		after  time.Duration
		midRun bool
	}{
		{300 * time.Millisecond, false}, // while it imports, or just after
		{600 * time.Millisecond, true},
		{time.Second, true},
		{50 * time.Millisecond, false}, // while it opens the database
		{800 * time.Millisecond, true},
	}
	for i, k := range kills {
		before := srv.Stats().Served
		p := startBinary(t, dir, binEnv(dir), args...)
		waitUntil(t, time.Minute, fmt.Sprintf("the moment of kill %d", i+1), func() bool {
			served := srv.Stats().Served - before
			return p.exited() || served >= maxServed ||
				(time.Since(p.started) >= k.after && (!k.midRun || served >= minServed))
		})
		st := srv.Stats()
		p.kill()
		t.Logf("kill %d: after %s, %d answers served to this run, %d calls in flight", i+1,
			time.Since(p.started).Round(time.Millisecond), st.Served-before, st.InFlight)
	}
	p := startBinary(t, dir, binEnv(dir), args...)
	p.expect(0, 2*time.Minute)
	t.Logf("final run: %s; %s", time.Since(p.started).Round(time.Millisecond), strings.TrimSpace(p.stderr.String()))

	flat := exportJSONL(t, db, "kill", "flat")
	if len(flat) != n {
		t.Errorf("export has %d lines, want %d", len(flat), n)
	}
	seen := map[string]bool{}
	for _, l := range flat {
		id, _ := l["custom_id"].(string)
		if seen[id] {
			t.Errorf("custom_id %q exported twice", id)
		}
		seen[id] = true
		var i int
		if _, err := fmt.Sscanf(id, "req-%d", &i); err != nil || l["status"] != "succeeded" ||
			l["content"] != fmt.Sprintf("echo: prompt-%d", i) {
			t.Errorf("export line %v", l)
		}
	}
	for i := 0; i < n; i++ {
		if !seen[fmt.Sprintf("req-%d", i)] {
			t.Errorf("req-%d missing from the export", i)
		}
	}
	st := statusJSON(t, db, "kill")
	for state, want := range map[string]int{"succeeded": n, "pending": 0, "running": 0, "failed": 0} {
		if got := count(t, st, state); got != want {
			t.Errorf("status: %s = %d, want %d", state, got, want)
		}
	}
	integrityCheck(t, db)
	if got := queryInt(t, db, `SELECT count(*) FROM results`); got != n {
		t.Errorf("%d results recorded, want %d", got, n)
	}
	// An attempt is counted only in the transaction that records its outcome,
	// so a killed run's calls never count.
	if got := queryInt(t, db, `SELECT count(*) FROM requests WHERE attempts != 1`); got != 0 {
		t.Errorf("%d requests have attempts != 1", got)
	}
	if got := queryInt(t, db, `SELECT count(*) FROM attempts`); got != n {
		t.Errorf("%d attempt rows, want %d", got, n)
	}
	fs := srv.Stats()
	t.Logf("fake: %d calls, %d served, %d keys served more than once (calls are at least once), %d canceled",
		fs.Calls, fs.Served, len(fs.DuplicateKeys()), fs.Canceled)
	if len(fs.ServedByKey) != n {
		t.Errorf("the fake served %d distinct prompts, want %d", len(fs.ServedByKey), n)
	}
}

// TestSIGINTDrainsAndResumes checks the two-stage shutdown of a real
// process: the first SIGINT stops claiming and records every answer in
// flight; a second one stops at once. Neither uses an attempt of a request
// that got no answer, and the job resumes from where it stopped.
func TestSIGINTDrainsAndResumes(t *testing.T) {
	const n = 60
	t.Run("Drain", func(t *testing.T) {
		dir := t.TempDir()
		srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 400 * time.Millisecond})
		file := writeLines(t, dir, "drain.jsonl", chatLines(n)...)
		db := filepath.Join(dir, "drain.db")
		args := []string{"--db", db, "run", "--base-url", srv.URL(), "--concurrency", "8", file}
		p := startBinary(t, dir, binEnv(dir), args...)
		waitUntil(t, time.Minute, "a request in flight", func() bool { return srv.Stats().InFlight > 0 })
		p.signal(os.Interrupt)
		p.expect(exitInterrupted, time.Minute)
		if !strings.Contains(p.stderr.String(), " run drain`") {
			t.Errorf("stderr does not say how to continue:\n%s", p.stderr.String())
		}
		// The fake counts an answer just after writing it; let it finish.
		waitUntil(t, 10*time.Second, "the fake to finish its handlers", func() bool { return srv.Stats().InFlight == 0 })
		served := int(srv.Stats().Served)
		if served == 0 || served >= n {
			t.Fatalf("the fake served %d answers before the exit; want some, not all, of %d", served, n)
		}
		if got := count(t, statusJSON(t, db, "drain"), "succeeded"); got != served {
			t.Errorf("%d succeeded recorded, but the fake served %d before the exit: answers in flight were lost", got, served)
		}
		checkRows(t, db, n, served, 1)
		t.Logf("first run: %d of %d answered and recorded during the drain, %s", served, n, time.Since(p.started).Round(time.Millisecond))

		p = startBinary(t, dir, binEnv(dir), args...)
		p.expect(0, time.Minute)
		if got := count(t, statusJSON(t, db, "drain"), "succeeded"); got != n {
			t.Errorf("after the rerun: %d succeeded, want %d", got, n)
		}
		if fs := srv.Stats(); fs.Served != n || len(fs.DuplicateKeys()) != 0 {
			t.Errorf("the fake served %d answers in all (%d keys twice), want exactly %d", fs.Served, len(fs.DuplicateKeys()), n)
		}
	})
	t.Run("SecondSignalStopsAtOnce", func(t *testing.T) {
		const latency = 30 * time.Second
		dir := t.TempDir()
		srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: latency})
		file := writeLines(t, dir, "hard.jsonl", chatLines(n)...)
		db := filepath.Join(dir, "hard.db")
		args := []string{"--db", db, "run", "--base-url", srv.URL(), "--concurrency", "8", file}
		p := startBinary(t, dir, binEnv(dir), args...)
		waitUntil(t, time.Minute, "a request in flight", func() bool { return srv.Stats().InFlight > 0 })
		p.signal(os.Interrupt)
		// Two signals sent at once may reach the process as one; send the
		// second only once the first has been handled.
		waitUntil(t, 30*time.Second, "the first signal to be handled", func() bool {
			return strings.Contains(p.stderr.String(), "llmbatch: stopping")
		})
		second := time.Now()
		p.signal(os.Interrupt)
		p.expect(exitInterrupted, time.Minute)
		if d := time.Since(second); d > latency/3 {
			t.Errorf("the second signal took %s to stop the run; the server's latency is %s", d, latency)
		}
		if fs := srv.Stats(); fs.Served != 0 {
			t.Fatalf("the fake served %d answers; the test needs none", fs.Served)
		}
		checkRows(t, db, n, 0, 0)
		t.Logf("stopped %s after the second signal", time.Since(second).Round(time.Millisecond))

		srv.SetConfig(fakeapi.Config{Key: testKey})
		p = startBinary(t, dir, binEnv(dir), args...)
		p.expect(0, time.Minute)
		if fs := srv.Stats(); fs.Served != n || len(fs.DuplicateKeys()) != 0 {
			t.Errorf("the fake served %d answers in all (%d keys twice), want exactly %d", fs.Served, len(fs.DuplicateKeys()), n)
		}
	})
}

// checkRows checks, after an interrupted run, that of n requests exactly
// succeeded have succeeded, with the given number of attempts each, and the
// others are pending with no attempt used; nothing is left running or failed.
func checkRows(t *testing.T, db string, n, succeeded, attempts int) {
	t.Helper()
	rows := readRequests(t, db)
	if len(rows) != n {
		t.Fatalf("%d requests stored, want %d", len(rows), n)
	}
	got := 0
	for _, r := range rows {
		switch {
		case r.status == "succeeded" && r.attempts == attempts:
			got++
		case r.status == "pending" && r.attempts == 0:
		default:
			t.Errorf("request %s: status %s, attempts %d", r.customID, r.status, r.attempts)
		}
	}
	if got != succeeded {
		t.Errorf("%d requests succeeded, want %d", got, succeeded)
	}
}

// TestTwoRunsOneJob starts a second run of a job a live run holds (it must
// refuse at once, naming the holder), then kills the holder with SIGKILL: a
// third run on the same host sees the holder's pid is gone and takes the job
// over at once, without waiting for the lock to go stale.
func TestTwoRunsOneJob(t *testing.T) {
	const n = 40
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: time.Second})
	file := writeLines(t, dir, "two.jsonl", chatLines(n)...)
	db := filepath.Join(dir, "two.db")
	args := []string{"--db", db, "run", "--base-url", srv.URL(), "--concurrency", "2", file}
	a := startBinary(t, dir, binEnv(dir), args...)
	waitUntil(t, time.Minute, "run A to send requests", func() bool { return srv.Stats().InFlight > 0 })

	b := startBinary(t, dir, binEnv(dir), args...)
	b.expect(exitError, time.Minute)
	host, _ := os.Hostname()
	if want := fmt.Sprintf("pid %d on %s", a.pid(), host); !strings.Contains(b.stderr.String(), want) {
		t.Errorf("run B's message does not name run A (%s):\n%s", want, b.stderr.String())
	}
	// Run B waiting for SQLite's busy timeout (10 s) would be a bug.
	if d := time.Since(b.started); d > 8*time.Second {
		t.Errorf("run B took %s to refuse", d)
	}
	t.Logf("run B refused in %s: %s", time.Since(b.started).Round(time.Millisecond), strings.TrimSpace(b.stderr.String()))

	waitUntil(t, time.Minute, "run A to have requests in flight", func() bool { return srv.Stats().InFlight > 0 })
	a.kill()
	srv.SetConfig(fakeapi.Config{Key: testKey})
	c := startBinary(t, dir, binEnv(dir), args...)
	c.expect(0, time.Minute)
	if !strings.Contains(c.stderr.String(), "left running by an earlier run go back to pending") {
		t.Errorf("run C did not recover run A's requests:\n%s", c.stderr.String())
	}
	t.Logf("run C took over and finished in %s", time.Since(c.started).Round(time.Millisecond))
	if got := count(t, statusJSON(t, db, "two"), "succeeded"); got != n {
		t.Errorf("%d succeeded, want %d", got, n)
	}
	if got := queryInt(t, db, `SELECT count(*) FROM requests WHERE attempts != 1`); got != 0 {
		t.Errorf("%d requests have attempts != 1", got)
	}
}
