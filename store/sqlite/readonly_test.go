package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

func mustOpenReadOnly(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := OpenReadOnly(context.Background(), path)
	if err != nil {
		tb.Fatalf("OpenReadOnly: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func pendingOf(tb testing.TB, s *Store, name string) (jobs.Job, int) {
	tb.Helper()
	ctx := context.Background()
	job, err := s.Job(ctx, name)
	if err != nil {
		tb.Fatalf("Job: %v", err)
	}
	st, err := s.Stats(ctx, job.ID)
	if err != nil {
		tb.Fatalf("Stats: %v", err)
	}
	return job, st.Counts[jobs.StatusPending]
}

// A read-only store beside a live writer sees each commit, never blocks
// the writer, and writes nothing itself.
func TestOpenReadOnlyBesideWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "llmbatch.db")
	w, _ := mustOpenStoreAt(t, path)
	job := mustImport(t, w, "live", chatRequests(5))
	ro := mustOpenReadOnly(t, path)
	if _, n := pendingOf(t, ro, "live"); n != 5 {
		t.Errorf("read-only store sees %d pending, want 5", n)
	}
	// A read transaction held open does not stop the writer.
	tx, err := ro.r.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var before int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM requests WHERE status = 'pending'`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	reqs := mustClaim(t, w, job.ID, 2)
	mustRecord(t, w, succeed(reqs[0]), succeed(reqs[1]))
	var during int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM requests WHERE status = 'pending'`).Scan(&during); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	if before != 5 || during != 5 {
		t.Errorf("one read transaction saw %d then %d pending, want one snapshot (5, 5)", before, during)
	}
	if _, n := pendingOf(t, ro, "live"); n != 3 {
		t.Errorf("after the writer's commit the read-only store sees %d pending, want 3", n)
	}
	if _, err := ro.Retry(ctx, job.ID); err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("Retry through a read-only store: %v, want a read-only error", err)
	}
}

// A database closed cleanly has no -wal file; a read-only open creates none
// where it cannot, and reads every commit from the file.
func TestOpenReadOnlyClosedDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llmbatch.db")
	w, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	mustImport(t, w, "done", chatRequests(3))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatalf("a cleanly closed database left its -wal file")
	}
	for _, immutable := range []bool{false, true} {
		db, err := openReadOnly(context.Background(), path, immutable)
		if err != nil {
			t.Fatalf("openReadOnly(immutable %v): %v", immutable, err)
		}
		s := &Store{w: db, r: db, Now: time.Now}
		if _, n := pendingOf(t, s, "done"); n != 3 {
			t.Errorf("immutable %v: %d pending, want 3", immutable, n)
		}
		db.Close()
	}
}

func TestOpenReadOnlyRefuses(t *testing.T) {
	dir := t.TempDir()
	t.Run("Missing", func(t *testing.T) {
		path := filepath.Join(dir, "missing.db")
		if s, err := OpenReadOnly(context.Background(), path); err == nil {
			s.Close()
			t.Fatal("OpenReadOnly of a missing file succeeded")
		}
		if _, err := os.Stat(path); err == nil {
			t.Error("OpenReadOnly created the file")
		}
	})
	t.Run("OlderSchema", func(t *testing.T) {
		path := filepath.Join(dir, "old.db")
		w, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, w, `DELETE FROM schema_migrations WHERE name = (SELECT max(name) FROM schema_migrations)`)
		w.Close()
		s, err := OpenReadOnly(context.Background(), path)
		if err == nil {
			s.Close()
			t.Fatal("OpenReadOnly of a database that needs a migration succeeded")
		}
		if !strings.Contains(err.Error(), "needs migration") {
			t.Errorf("error %q does not say a migration is needed", err)
		}
	})
	t.Run("NotADatabase", func(t *testing.T) {
		path := filepath.Join(dir, "text.db")
		if err := os.WriteFile(path, []byte("not sqlite"), 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := OpenReadOnly(context.Background(), path); err == nil {
			s.Close()
			t.Fatal("OpenReadOnly of a text file succeeded")
		}
	})
}
