package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/postgres/migrations"
)

// Store is a PostgreSQL database of jobs, shared by every runner that
// opens it. It implements jobs.Store.
type Store struct {
	pool *pgxpool.Pool
	// Now is the clock; tests replace it.
	Now func() time.Time
	// leases are the runs this store works jobs for (lease.go).
	leases leases
}

var _ jobs.Store = (*Store)(nil)

// Open connects to the database dsn names (a postgres:// or postgresql://
// URL, or a libpq key=value string) and brings its schema up to date.
func Open(ctx context.Context, dsn string) (*Store, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	s := &Store{pool: pool, Now: time.Now}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the connection pool. A second Close does nothing.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// migrationLock is the key of the advisory lock the migrations run under:
// two hosts that open a new database at once must not both create its
// tables. Any constant does, as long as nothing else in the database uses
// it; this one spells "llmbatch" in ASCII.
const migrationLock int64 = 0x6c6c6d6261746368

// migrate applies, in name order, each embedded migration not yet
// recorded, each in its own transaction, holding the advisory lock on one
// connection throughout.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		// A lock left held would stay with the pooled connection; a
		// connection that cannot release it is closed, which does.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock); err != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name text PRIMARY KEY, applied_at bigint NOT NULL)`); err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := s.applyMigration(ctx, conn.Conn(), name); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

// applyMigration runs the migration name, unless it is recorded already,
// in one transaction with its record.
func (s *Store) applyMigration(ctx context.Context, conn *pgx.Conn, name string) error {
	text, err := fs.ReadFile(migrations.FS, name)
	if err != nil {
		return err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE name = $1`, name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	// Exec with no arguments sends the file as one simple query, so that
	// it may hold many statements.
	if _, err := tx.Exec(ctx, string(text)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)`,
		name, millis(s.Now())); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// querier is what a pool, a connection and a transaction share, for the
// helpers that read inside or outside a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// scanner is a row to scan: pgx.Row, or pgx.Rows at one row.
type scanner interface{ Scan(dest ...any) error }

// millis is t as unix milliseconds, the way every time is stored; 0 for
// the zero time.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMillis is millis reversed: 0 is the zero time.
func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// uniqueViolation is PostgreSQL's SQLSTATE for a broken UNIQUE constraint.
const uniqueViolation = "23505"

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == uniqueViolation
}

// nullString is s, or NULL when empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullBytes is b, or NULL when nil.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}
