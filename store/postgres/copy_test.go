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
	t.Run("FromSQLite", func(t *testing.T) { storetest.RunCopy(t, openSQLite, openPostgres) })
	t.Run("ToSQLite", func(t *testing.T) { storetest.RunCopy(t, openPostgres, openSQLite) })
}

// TestCopySQLiteToPostgreSQLAndBack carries a job with every kind of row
// from SQLite to PostgreSQL and back to another SQLite database: each
// copy holds what the original does.
func TestCopySQLiteToPostgreSQLAndBack(t *testing.T) {
	storetest.CopyChain(t, openSQLite(t), openPostgres(t), openSQLite(t))
}

func openPostgres(t *testing.T) jobs.Store { return mustOpen(t) }

// openSQLite opens a new SQLite database in t's temporary directory,
// closed when t ends.
func openSQLite(t *testing.T) jobs.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "llmbatch.db"))
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
