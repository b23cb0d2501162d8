package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// A run must not hold a read transaction open while it writes: the WAL
// could not be checkpointed past it and would grow with every result
// (about 4 KB a request here) instead of being reused from its start.
func TestRunLetsTheWALBeCheckpointed(t *testing.T) {
	const n = 5000
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	dir := t.TempDir()
	file := writeLines(t, dir, "w.jsonl", chatLines(n)...)
	for _, quiet := range []bool{true, false} {
		db := filepath.Join(t.TempDir(), "w.db")
		args := append(runArgs(db, srv, file), "--concurrency", "32", "--log-interval", "1h")
		if quiet {
			args = append(args, "-q")
		}
		// The largest the WAL gets while the run works (a clean end
		// checkpoints and removes it).
		done := make(chan struct{})
		largest := make(chan int64)
		go func() {
			var most int64
			for {
				if fi, err := os.Stat(db + "-wal"); err == nil {
					most = max(most, fi.Size())
				}
				select {
				case <-done:
					largest <- most
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		res := runCLI(t, keyEnv(), args...)
		close(done)
		most := <-largest
		if res.Code != 0 {
			t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
		}
		t.Logf("quiet %v: the WAL reached %d bytes for %d requests", quiet, most, n)
		// The auto-checkpoint restarts the WAL at 1,000 pages (4 MB).
		if most > 8<<20 {
			t.Errorf("quiet %v: the WAL grew to %d bytes: it was never checkpointed back to its start", quiet, most)
		}
	}
}
