package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/storetest"
)

// TestCopy holds the SQLite engine to the copy contract, from one
// database to another.
func TestCopy(t *testing.T) {
	storetest.RunCopy(t, openStore, openStore)
}

// openStore opens a new database in t's temporary directory, closed when
// t ends.
func openStore(t *testing.T) jobs.Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "llmbatch.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}
