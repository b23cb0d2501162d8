package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/storetest"
)

// TestContract holds the SQLite engine to the store contract, each case on
// a fresh database with the real clock, as the command line opens it.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) jobs.Store {
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
	})
}
