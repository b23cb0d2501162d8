package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/llmbatch/llmbatch/internal/pgtest"
	"github.com/llmbatch/llmbatch/store/postgres"
	"github.com/llmbatch/llmbatch/store/sqlite"
)

func TestIsPostgres(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		want bool
	}{
		{"postgres://u@h/db", true},
		{"postgresql://u@h:5432/db?sslmode=disable", true},
		{"POSTGRES://u@h/db", true},
		{"llmbatch.db", false},
		{"file:llmbatch.db?mode=ro", false},
		{"dir/postgres://x", false},
		{"mysql://u@h/db", false},
	} {
		if got := IsPostgres(tc.dsn); got != tc.want {
			t.Errorf("IsPostgres(%q) = %v, want %v", tc.dsn, got, tc.want)
		}
	}
}

// TestOpenPicksEngine: the DSN's form picks the engine, for Open and
// OpenReadOnly alike.
func TestOpenPicksEngine(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "llmbatch.db")
	pg := pgtest.DSN(t)
	for _, open := range []struct {
		name string
		fn   func(context.Context, string) (any, error)
	}{
		{"Open", func(ctx context.Context, dsn string) (any, error) { return Open(ctx, dsn) }},
		{"OpenReadOnly", func(ctx context.Context, dsn string) (any, error) { return OpenReadOnly(ctx, dsn) }},
	} {
		st, err := open.fn(ctx, path)
		if _, ok := st.(*sqlite.Store); err != nil || !ok {
			t.Errorf("%s(%q) = %T, %v; want a *sqlite.Store", open.name, path, st, err)
		}
		closeStore(t, st)
		st, err = open.fn(ctx, pg)
		if _, ok := st.(*postgres.Store); err != nil || !ok {
			t.Errorf("%s(postgres DSN) = %T, %v; want a *postgres.Store", open.name, st, err)
		}
		closeStore(t, st)
	}
}

func closeStore(t *testing.T, st any) {
	t.Helper()
	if c, ok := st.(interface{ Close() error }); ok {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}
