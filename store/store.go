// Package store is what every storage engine shares: Open, which picks the
// engine a database's name asks for, and (in store/storetest) the contract
// suite every engine passes. The engines live below it: store/sqlite, the
// default, for one machine, and store/postgres, for a job shared by
// runners on many hosts. Commands reach storage only through Open and the
// jobs.Store it returns.
package store

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/postgres"
	"github.com/llmbatch/llmbatch/store/sqlite"
)

// Open opens the database dsn names, creating it when it is new: a
// postgres:// or postgresql:// URL is a PostgreSQL database (whose tables
// are created in it), and a path (or a file: URI) a SQLite database,
// created with mode 0600.
func Open(ctx context.Context, dsn string) (jobs.Store, error) {
	if IsPostgres(dsn) {
		return openPostgres(ctx, dsn)
	}
	path, err := sqlitePath(dsn)
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// OpenReadOnly opens the database dsn names for reading only, for the
// commands that only read when it cannot be written (jobs.ErrNeedsWrite
// when it could be read only after a write). A PostgreSQL database is
// opened as Open does: the server decides what this user may do.
func OpenReadOnly(ctx context.Context, dsn string) (jobs.Store, error) {
	if IsPostgres(dsn) {
		return openPostgres(ctx, dsn)
	}
	path, err := sqlitePath(dsn)
	if err != nil {
		return nil, err
	}
	st, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// NotDatabase returns a *sqlite.NotDatabaseError naming dsn when err says
// the file dsn names is not a database of ours, else nil.
func NotDatabase(dsn string, err error) error {
	path, perr := sqlitePath(dsn)
	if perr != nil {
		return nil
	}
	if nd := sqlite.NotDatabase(path, err); nd != nil {
		return nd
	}
	return nil
}

// IsPostgres reports whether dsn names a PostgreSQL database: a
// postgres:// or postgresql:// URL (the scheme in any case).
func IsPostgres(dsn string) bool {
	scheme, _, ok := strings.Cut(dsn, "://")
	return ok && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql"))
}

// Display is dsn as messages and hints may show it: a PostgreSQL URL
// without its password (the user's PGPASSWORD or ~/.pgpass supplies it),
// anything else as it is.
func Display(dsn string) string {
	if !IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://…" // unreadable: show nothing of it
	}
	if _, has := u.User.Password(); has {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// openPostgres opens the PostgreSQL database dsn names.
func openPostgres(ctx context.Context, dsn string) (jobs.Store, error) {
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// sqlitePath is the file a SQLite dsn names: a path, or a file: URI
// without its query. A URL of another engine is refused, by name.
func sqlitePath(dsn string) (string, error) {
	if scheme, _, ok := strings.Cut(dsn, "://"); ok && !strings.Contains(scheme, "/") {
		return "", fmt.Errorf("--db %s: no %s engine here; a path is a SQLite database", scheme+"://…", scheme)
	}
	if rest, ok := strings.CutPrefix(dsn, "file:"); ok {
		path, _, _ := strings.Cut(rest, "?")
		return path, nil
	}
	return dsn, nil
}
