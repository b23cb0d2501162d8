// Package sqlite is the SQLite storage engine, the default, for one
// machine: it keeps jobs, requests, attempts and results in one file,
// opens it with its pragmas, applies its embedded migrations, imports input
// files in one transaction, claims work atomically, records outcomes in
// group commits, recovers the orphans of dead runs, and reads statistics
// and results back. It implements jobs.Store; commands reach it through
// store.Open. It imports jobs and the SQLite driver.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/sqlite/migrations"
	"github.com/mattn/go-sqlite3"
)

// Store is a SQLite database of jobs. It implements jobs.Store.
type Store struct {
	// w is the single writer connection; r serves concurrent readers (WAL
	// lets them read while a run writes).
	w, r *sql.DB
	// Now is the clock; tests replace it.
	Now func() time.Time
	// DeferIndexesAfter is how many rows an import stores with every index
	// in place before it may drop the indexes whose keys arrive in no order
	// and build them again at its end (see deferredIndexes). Open sets it
	// to DefaultDeferIndexesAfter; tests lower it to reach the deferral with
	// small imports, and 0 decides after the first batch.
	DeferIndexesAfter int
}

var _ jobs.Store = (*Store)(nil)

// Open opens (creating, with mode 0600, if needed) the database at path and
// brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) { return openMigrated(ctx, path, "") }

// openMigrated is Open applying the migrations up to the one named last
// ("" for all), so that tests can build a database as an older llmbatch
// left it.
func openMigrated(ctx context.Context, path, last string) (*Store, error) {
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite3", dsn(path, "immediate"))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite3", dsn(path, "deferred")+"&mode=ro")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	r.SetMaxOpenConns(4)
	s := &Store{w: w, r: r, Now: time.Now, DeferIndexesAfter: DefaultDeferIndexesAfter}
	if err := s.migrate(ctx, last); err != nil {
		s.Close()
		if nd := NotDatabase(path, err); nd != nil {
			return nil, nd
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// NotDatabaseError is the error of a file that SQLite cannot read as a
// database at all, such as a text or JSONL file given as the database by
// mistake. SQLite reads its header and refuses it before writing anything,
// so the file is left as it was.
type NotDatabaseError struct {
	Path string
	Err  error // the driver's error
}

func (e *NotDatabaseError) Error() string {
	return fmt.Sprintf("%s: not an llmbatch database (%v)", e.Path, e.Err)
}

func (e *NotDatabaseError) Unwrap() error { return e.Err }

// NotDatabase returns err as a *NotDatabaseError of path when SQLite found
// that path is not a database (SQLITE_NOTADB), and nil otherwise. Open
// returns such an error; callers that opened path otherwise (read-only)
// can describe their error the same way.
func NotDatabase(path string, err error) *NotDatabaseError {
	var se sqlite3.Error
	if !errors.As(err, &se) || se.Code != sqlite3.ErrNotADB {
		return nil
	}
	return &NotDatabaseError{Path: path, Err: se}
}

// dsn puts every setting in the connection string so that each pooled
// connection gets it. synchronous=FULL makes a committed result survive a
// power cut, not only a crash; group commit keeps its cost small. Each
// connection keeps its prepared statements (_stmt_cache_size), so that the
// claim and record statements a run repeats thousands of times a second
// are parsed once.
func dsn(path, txlock string) string {
	v := url.Values{}
	v.Set("_journal_mode", "WAL")
	v.Set("_busy_timeout", "10000")
	v.Set("_foreign_keys", "on")
	v.Set("_synchronous", "FULL")
	v.Set("_txlock", txlock)
	v.Set("_stmt_cache_size", "32")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + v.Encode()
}

// createPrivate creates the database file with mode 0600 before SQLite does,
// so that the key-free but private data is not world-readable; SQLite gives
// its -wal and -shm files the same mode.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	return f.Close()
}

// Close closes both connection pools.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// migrate applies, in name order, each embedded migration not yet recorded
// (up to last, unless it is ""), each in its own transaction.
func (s *Store) migrate(ctx context.Context, last string) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if last != "" && name > last {
			break
		}
		if err := s.migrateFile(ctx, name); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

// foreignKeysOff, as the first line of a migration, runs it with foreign
// keys off: a migration that rebuilds a table others refer to (SQLite's
// 12-step procedure for the schema changes ALTER TABLE cannot make) would
// otherwise delete, through ON DELETE CASCADE, every row that refers to the
// table it drops. PRAGMA foreign_keys does nothing inside a transaction, so
// the runner sets it on the migration's connection before and after.
const foreignKeysOff = "-- migrate: foreign_keys off"

// wantsForeignKeysOff reports whether the first line of a migration is
// foreignKeysOff, whatever the editor that saved it did to the line's end
// (CRLF) or the file's start (a byte-order mark): missing the marker would
// run a table rebuild with foreign keys on, and cascade away its rows.
func wantsForeignKeysOff(text string) bool {
	text = strings.TrimPrefix(text, "\ufeff")
	first, _, _ := strings.Cut(text, "\n")
	return strings.TrimRight(first, " \t\r") == foreignKeysOff
}

func (s *Store) migrateFile(ctx context.Context, name string) error {
	text, err := fs.ReadFile(migrations.FS, name)
	if err != nil {
		return err
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if !wantsForeignKeysOff(string(text)) {
		return s.applyMigration(ctx, conn, name, string(text), false)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	err = s.applyMigration(ctx, conn, name, string(text), true)
	if _, onErr := conn.ExecContext(ctx, `PRAGMA foreign_keys = ON`); onErr != nil {
		// A connection left without foreign keys must not serve the store.
		return errors.Join(err, fmt.Errorf("foreign keys back on: %w", onErr))
	}
	return err
}

// applyMigration runs the migration name, unless it is recorded already,
// in one transaction with its record. With checkKeys it refuses to commit
// a database whose foreign keys no longer hold.
func (s *Store) applyMigration(ctx context.Context, conn *sql.Conn, name, text string, checkKeys bool) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, text); err != nil {
		return err
	}
	if checkKeys {
		if err := foreignKeyCheck(ctx, tx); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`,
		name, millis(s.Now())); err != nil {
		return err
	}
	return tx.Commit()
}

// foreignKeyCheck runs PRAGMA foreign_key_check and returns an error naming
// the first row whose reference is broken.
func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	var table, parent string
	var rowid sql.NullInt64
	var fkid int64
	err := tx.QueryRowContext(ctx, `PRAGMA foreign_key_check`).Scan(&table, &rowid, &parent, &fkid)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("foreign key check: %w", err)
	}
	return fmt.Errorf("foreign key check: row %d of %s refers to a missing row of %s", rowid.Int64, table, parent)
}

// IntegrityCheck runs PRAGMA integrity_check and returns its first line
// ("ok" for a sound database).
func (s *Store) IntegrityCheck(ctx context.Context) (string, error) {
	var res string
	err := s.w.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res)
	return res, err
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
