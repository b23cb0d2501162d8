package e2e

// The commands that only read (status, jobs, export, report) work on a
// database that cannot be written: a read-only disk (a tmpfs the test
// remounts, as root) or a read-only file and directory (chmod, as any other
// user). Commands that write fail with a clear message.

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// checkReadOnlyViews runs the reading commands on db and checks that they
// see succeeded answers, and that retry is refused with a clear message.
func checkReadOnlyViews(t *testing.T, db, job string, total, succeeded int, outDir string) {
	t.Helper()
	s := statusJSON(t, db, job)
	if got := count(t, s, "succeeded"); got != succeeded {
		t.Errorf("status: %d succeeded, want %d", got, succeeded)
	}
	if res := runCLI(t, nil, "--db", db, "jobs"); res.Code != 0 || !strings.Contains(res.Stdout, job) {
		t.Errorf("jobs: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if lines := exportJSONL(t, db, job, "flat"); len(lines) != succeeded {
		t.Errorf("export: %d lines, want the %d answers", len(lines), succeeded)
	}
	report := filepath.Join(outDir, job+".html")
	if res := runCLI(t, nil, "--db", db, "report", job, "-o", report); res.Code != 0 {
		t.Errorf("report: exit %d\n%s", res.Code, res.Stderr)
	} else if st, err := os.Stat(report); err != nil || st.Size() == 0 {
		t.Errorf("report wrote nothing: %v", err)
	}
	res := runCLI(t, nil, "--db", db, "retry", job)
	if res.Code != exitError || !strings.Contains(res.Stderr, db) {
		t.Errorf("retry on a read-only database: exit %d, want 1 with a message naming it\n%s", res.Code, res.Stderr)
	}
	t.Logf("retry: %s", lastLine(res.Stderr))
	if total > succeeded {
		if got := count(t, s, "pending") + count(t, s, "running"); got != total-succeeded {
			t.Errorf("status: %d pending or running, want %d", got, total-succeeded)
		}
	}
}

// TestReadOnlyDiskViews: the reading commands on a read-only disk, once
// with the -wal and -shm files of a killed run (the answers it committed
// are in the -wal), once with a database closed cleanly (no -wal, and no
// -shm can be made).
func TestReadOnlyDiskViews(t *testing.T) {
	binary(t)
	const n = 200
	dbDir := mountTmpfs(t, "64m")
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 20 * time.Millisecond})
	file := writeLines(t, dir, "ro.jsonl", chatLines(n)...)
	db := filepath.Join(dbDir, "ro.db")

	p := startBinary(t, dir, binEnv(dir), "--db", db, "run", "--base-url", srv.URL(), "--concurrency", "4", file)
	waitUntil(t, time.Minute, "30 answers", func() bool { return p.exited() || srv.Stats().Served >= 30 })
	p.kill()
	committed := queryInt(t, db, `SELECT count(*) FROM requests WHERE status = 'succeeded'`)
	if _, err := os.Stat(db + "-wal"); err != nil {
		t.Fatalf("the killed run left no -wal file: %v", err)
	}
	wal, _ := os.ReadFile(db + "-wal")
	t.Logf("killed with %d answers committed; -wal %d bytes", committed, len(wal))
	remount(t, dbDir, "", syscall.MS_RDONLY)
	t.Run("KilledRunWAL", func(t *testing.T) {
		checkReadOnlyViews(t, db, "ro", n, committed, dir)
		if after, _ := os.ReadFile(db + "-wal"); string(after) != string(wal) {
			t.Error("the -wal file changed on a read-only disk")
		}
	})

	remount(t, dbDir, "", 0)
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--quiet", file)...); res.Code != 0 {
		t.Fatalf("run to the end: exit %d\n%s", res.Code, res.Stderr)
	}
	if _, err := os.Stat(db + "-wal"); err == nil {
		t.Fatalf("a run that ended left its -wal file")
	}
	remount(t, dbDir, "", syscall.MS_RDONLY)
	t.Run("ClosedCleanly", func(t *testing.T) {
		checkReadOnlyViews(t, db, "ro", n, n, dir)
		if _, err := os.Stat(db + "-shm"); err == nil {
			t.Error("a -shm file appeared on a read-only disk")
		}
	})
}

// TestReadOnlyFileViews: the database file and its directory lose their
// write permission. Root ignores file modes, so this runs only as another
// user (TestReadOnlyDiskViews covers root).
func TestReadOnlyFileViews(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores file modes; TestReadOnlyDiskViews covers a read-only disk")
	}
	dir := t.TempDir()
	dbDir := filepath.Join(dir, "db")
	if err := os.Mkdir(dbDir, 0o700); err != nil {
		t.Fatal(err)
	}
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "ro.jsonl", chatLines(20)...)
	db := filepath.Join(dbDir, "ro.db")
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--quiet", file)...); res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	if err := os.Chmod(db, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dbDir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dbDir, 0o700) })
	checkReadOnlyViews(t, db, "ro", 20, 20, dir)
}
