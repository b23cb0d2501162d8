package postgres

import (
	"path/filepath"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/sqlite"
	"github.com/llmbatch/llmbatch/store/storetest"
)

// TestCopy holds the PostgreSQL engine to the copy contract, from one
// database to another, and across engines both ways.
func TestCopy(t *testing.T) {
	t.Run("PostgreSQL", func(t *testing.T) { storetest.RunCopy(t, openPostgres, openPostgres) })
	t.Run("FromSQLite", func(t *testing.T) { storetest.RunCopy(t, openLite, openPostgres) })
	t.Run("ToSQLite", func(t *testing.T) { storetest.RunCopy(t, openPostgres, openLite) })
}

// TestCopySQLiteToPostgreSQLAndBack carries a job with every kind of row
// from SQLite to PostgreSQL and back to another SQLite database: each
// copy holds what the original does.
func TestCopySQLiteToPostgreSQLAndBack(t *testing.T) {
	storetest.CopyChain(t, openSQLite(t), openPostgres(t), openSQLite(t))
}

func openPostgres(t *testing.T) jobs.Store { return mustOpen(t) }
func openLite(t *testing.T) jobs.Store     { return openSQLite(t) }

// openSQLite opens a new SQLite database in tb's temporary directory,
// closed when tb ends.
func openSQLite(tb testing.TB) jobs.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), filepath.Join(tb.TempDir(), "llmbatch.db"))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}
