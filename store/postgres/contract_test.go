package postgres

import (
	"context"
	"testing"

	"github.com/llmbatch/llmbatch/internal/pgtest"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/storetest"
)

// TestContract holds the PostgreSQL engine to the store contract, each
// case on a fresh database with the real clock, as the command line opens
// it; the suite skips the cases of one run per job, which jobs.Runners
// replaces (lease_test.go holds the engine to what it promises instead).
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) jobs.Store { return mustOpen(t) })
}

// mustOpen opens a fresh database of the test server, closed when t ends.
func mustOpen(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(context.Background(), pgtest.DSN(tb))
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
