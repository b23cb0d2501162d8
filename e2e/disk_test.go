package e2e

// Write failures: the database lives on a small tmpfs that the test mounts
// (it needs root, or CAP_SYS_ADMIN, and is skipped with the reason
// otherwise), fills mid-run, or remounts read-only. A run that cannot write
// must stop with a clear message and exit 1, keep every result it
// committed, and the job must finish, each request exactly once, when the
// space is back.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// mountTmpfs mounts a tmpfs of the given size ("2m") on a new directory and
// unmounts it when the test ends; it skips the test when it cannot mount.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs on %s (%v): this test needs root (or CAP_SYS_ADMIN) to fill a disk", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

func remount(t *testing.T, dir, opts string, flags uintptr) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|flags, opts); err != nil {
		t.Fatalf("remount %s (%s): %v", dir, opts, err)
	}
}

// fillDisk writes a file in dir until the file system is full and returns
// its path and size.
func fillDisk(t *testing.T, dir string) (string, int64) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	var n int64
	for {
		m, err := f.Write(buf)
		n += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			return path, n
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

// diskLines are n chat lines whose answers are about 1 KiB each, so that
// results fill a small disk quickly.
func diskLines(n int) []any {
	pad := strings.Repeat("lorem ipsum ", 40)
	lines := make([]any, n)
	for i := range lines {
		lines[i] = map[string]any{"custom_id": fmt.Sprintf("req-%d", i), "model": "deepseek/deepseek-v3",
			"messages": []any{map[string]any{"role": "user", "content": fmt.Sprintf("prompt-%d %s", i, pad)}}}
	}
	return lines
}

// checkAllOnce checks that the job's n requests each have exactly one
// result, that what was committed before is unchanged, and that the
// database is sound.
func checkAllOnce(t *testing.T, db, job string, n int, committed map[string]string) {
	t.Helper()
	integrityCheck(t, db)
	flat := exportJSONL(t, db, job, "flat")
	if len(flat) != n {
		t.Errorf("export has %d lines, want %d", len(flat), n)
	}
	seen := map[string]bool{}
	for i, l := range flat {
		id := fmt.Sprintf("req-%d", i)
		if l["custom_id"] != id || l["status"] != "succeeded" ||
			!strings.HasPrefix(fmt.Sprint(l["content"]), fmt.Sprintf("echo: prompt-%d ", i)) {
			t.Errorf("export line %d: %v", i, l)
		}
		seen[fmt.Sprint(l["custom_id"])] = true
	}
	if len(seen) != len(flat) {
		t.Errorf("%d distinct custom_ids in %d export lines", len(seen), len(flat))
	}
	if got := queryInt(t, db, `SELECT count(*) FROM results`); got != n {
		t.Errorf("%d results stored, want %d", got, n)
	}
	snapshotCommitted(t, db, committed)
}

// TestDiskFull fills the file system under the database while a run
// records results.
func TestDiskFull(t *testing.T) {
	binary(t)
	const n = 1500
	dbDir := mountTmpfs(t, "16m")
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 20 * time.Millisecond})
	file := writeLines(t, dir, "full.jsonl", diskLines(n)...)
	db := filepath.Join(dbDir, "full.db")
	args := []string{"--db", db, "run", "--base-url", srv.URL(), "--concurrency", "4", "--retry-delay", "10ms", file}

	p := startBinary(t, dir, binEnv(dir), args...)
	waitUntil(t, time.Minute, "100 answers", func() bool { return p.exited() || srv.Stats().Served >= 100 })
	if p.exited() {
		t.Fatalf("the run ended before the disk was filled\nstderr:\n%s", p.stderr.String())
	}
	filler, size := fillDisk(t, dbDir)
	t.Logf("filled the disk with %d KiB after %d answers", size>>10, srv.Stats().Served)
	p.expect(exitError, time.Minute)
	checkFullMessage(t, p)
	committed := map[string]string{}
	snapshotCommitted(t, db, committed)
	if len(committed) == 0 || len(committed) >= n {
		t.Fatalf("%d of %d requests committed before the disk filled; the test needs some, not all", len(committed), n)
	}
	t.Logf("run stopped in %s with %d of %d recorded: %s", time.Since(p.started).Round(time.Millisecond),
		len(committed), n, lastLine(p.stderr.String()))

	// Still full: a new run stops at once with the same message.
	p = startBinary(t, dir, binEnv(dir), args...)
	p.expect(exitError, time.Minute)
	checkFullMessage(t, p)
	snapshotCommitted(t, db, committed)
	t.Logf("rerun on the full disk stopped: %s", lastLine(p.stderr.String()))

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	remount(t, dbDir, "size=64m", 0)
	srv.SetConfig(fakeapi.Config{Key: testKey}) // no more need to be slow
	p = startBinary(t, dir, binEnv(dir), args...)
	p.expect(0, 2*time.Minute)
	checkAllOnce(t, db, "full", n, committed)
	fs := settled(t, srv)
	t.Logf("once space was back: %s; the fake served %d answers (%d asked again: answered but not recorded when the disk filled)",
		lastLine(p.stderr.String()), fs.Served, fs.Served-n)
}

func checkFullMessage(t *testing.T, p *proc) {
	t.Helper()
	msg := p.stderr.String()
	if !strings.Contains(msg, "database or disk is full") || !strings.Contains(msg, " run full` to continue") {
		t.Errorf("%s: the message does not say the disk is full and how to continue:\n%s", p.name, msg)
	}
	if strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine ") {
		t.Errorf("%s crashed:\n%s", p.name, msg)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// TestReadOnlyDisk remounts the file system of a killed run's database
// read-only. (Linux refuses to remount read-only while a process has a file
// open for writing, so a live run cannot have its disk turned read-only
// under it; a run that starts on one is the case there is.)
func TestReadOnlyDisk(t *testing.T) {
	binary(t)
	const n = 400
	dbDir := mountTmpfs(t, "64m")
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 20 * time.Millisecond})
	file := writeLines(t, dir, "ro.jsonl", diskLines(n)...)
	db := filepath.Join(dbDir, "ro.db")
	args := []string{"--db", db, "run", "--base-url", srv.URL(), "--concurrency", "4", file}

	p := startBinary(t, dir, binEnv(dir), args...)
	waitUntil(t, time.Minute, "50 answers", func() bool { return p.exited() || srv.Stats().Served >= 50 })
	served := srv.Stats().Served
	p.kill()
	t.Logf("killed after %s, %d served", time.Since(p.started), served)
	committed := map[string]string{}
	snapshotCommitted(t, db, committed)
	if _, err := os.Stat(db + "-wal"); err != nil {
		t.Fatalf("the killed run left no -wal file: %v", err)
	}
	remount(t, dbDir, "", syscall.MS_RDONLY)
	before, _ := os.ReadFile(db + "-wal")

	p = startBinary(t, dir, binEnv(dir), args...)
	p.expect(exitError, time.Minute)
	if msg := p.stderr.String(); !strings.Contains(msg, "read-only file system") {
		t.Errorf("the message does not say the disk is read-only:\n%s", msg)
	}
	if after, _ := os.ReadFile(db + "-wal"); string(after) != string(before) {
		t.Errorf("the -wal file changed on a read-only disk")
	}
	t.Logf("run on the read-only disk: %s", lastLine(p.stderr.String()))

	remount(t, dbDir, "", 0)
	kept := len(committed)
	p = startBinary(t, dir, binEnv(dir), args...)
	p.expect(0, 2*time.Minute)
	checkAllOnce(t, db, "ro", n, committed)
	t.Logf("%d committed before the kill kept; once writable: %s", kept, lastLine(p.stderr.String()))
}
