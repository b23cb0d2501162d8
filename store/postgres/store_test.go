package postgres

import (
	"context"
	"io/fs"
	"sync"
	"testing"

	"github.com/llmbatch/llmbatch/internal/pgtest"
	"github.com/llmbatch/llmbatch/store/postgres/migrations"
)

// TestOpenMigratesOnce opens one new database from several "hosts" at
// once: every Open succeeds, each migration is applied once, and opening
// again applies nothing.
func TestOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	const hosts = 4
	stores := make([]*Store, hosts)
	errs := make([]error, hosts)
	var wg sync.WaitGroup
	for i := range hosts {
		wg.Go(func() { stores[i], errs[i] = Open(context.Background(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("migrations: %v, %v", names, err)
	}
	again, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	defer again.Close()
	for _, name := range names {
		if got := queryInt(t, again, `SELECT count(*) FROM schema_migrations WHERE name = $1`, name); got != 1 {
			t.Errorf("migration %s recorded %d times, want 1", name, got)
		}
	}
	if got := queryInt(t, again, `SELECT count(*) FROM schema_migrations`); got != len(names) {
		t.Errorf("schema_migrations holds %d rows, want %d", got, len(names))
	}
}

// TestCloseTwice: a second Close is harmless, as the contract asks.
func TestCloseTwice(t *testing.T) {
	s, err := Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
