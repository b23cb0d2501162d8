package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/sqlite/migrations"
)

// OpenReadOnly opens the existing database at path for reading only: for
// the commands that only read (status, jobs, export, report) when Open
// cannot write, because the disk was mounted or turned read-only, the file
// or its directory is not writable for this user, or the disk is full. It
// creates, changes and migrates nothing; every write through the returned
// Store fails.
//
// A WAL database needs its -shm file to be read: SQLite opens it read-only
// when it exists (after a run was killed, the -wal and -shm files are
// there), and creates it when the directory is writable. When neither is
// possible (a database closed cleanly, so without -wal and -shm, in a
// read-only directory) the file is opened immutable: with no -wal file,
// the file alone holds every commit, and on a read-only disk (or a file
// no one may write) no one can change it. Elsewhere OpenReadOnly refuses:
// an immutable reader would never see a later writer's commits, and could
// read its checkpoints half done. A -wal file that holds commits but has
// no -shm file beside it cannot be read safely; OpenReadOnly then refuses
// rather than show an old state.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db, err := openReadOnly(ctx, path, false)
	if err != nil {
		if walHasCommits(path) {
			return nil, fmt.Errorf("open database read-only: %w (%s-wal holds commits that cannot be read without %s-shm; "+
				"copy the database with its -wal file to a writable disk)%w", err, path, path, needsWrite)
		}
		if !unchangeable(path) {
			return nil, fmt.Errorf("open database read-only: %w (%s has no -shm file, none can be made beside it, and "+
				"it could be written while it is read; run this as a user who may write its directory, "+
				"or read a copy)%w", err, path, needsWrite)
		}
		if db, err = openReadOnly(ctx, path, true); err != nil {
			return nil, fmt.Errorf("open database read-only: %w", err)
		}
	}
	s := &Store{w: db, r: db, Now: time.Now}
	if err := s.checkSchema(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// openReadOnly opens a pool of read-only connections and reads the schema
// once, which is when SQLite opens the -shm file.
func openReadOnly(ctx context.Context, path string, immutable bool) (*sql.DB, error) {
	v := url.Values{}
	v.Set("mode", "ro")
	v.Set("_query_only", "1")
	v.Set("_busy_timeout", "10000")
	v.Set("_txlock", "deferred")
	if immutable {
		v.Set("immutable", "1")
	}
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+v.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// needsWrite marks OpenReadOnly's errors with jobs.ErrNeedsWrite and adds
// nothing to their text.
var needsWrite = silent{jobs.ErrNeedsWrite}

type silent struct{ err error }

func (s silent) Error() string { return "" }
func (s silent) Unwrap() error { return s.err }

// unchangeable says whether no one can change the database at path while
// it is read, so that it may be opened immutable (read without locks and
// without the -shm file): its file system is mounted read-only, or its
// file has no write permission for anyone. A file only this user may not
// write could be written by its owner, whose commits an immutable reader
// would never see, and whose checkpoints it could read half done.
func unchangeable(path string) bool {
	if readOnlyMount(path) {
		return true
	}
	st, err := os.Stat(path)
	return err == nil && st.Mode().Perm()&0o222 == 0
}

// walHasCommits says whether the -wal file beside path holds frames. A
// -wal file of only its header (32 bytes) or none holds no commit.
func walHasCommits(path string) bool {
	st, err := os.Stat(path + "-wal")
	return err == nil && st.Size() > 32
}

// checkSchema refuses a database whose schema lacks a migration this
// version has: a read-only store cannot apply it, and the queries would
// fail on a missing column.
func (s *Store) checkSchema(ctx context.Context) error {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("not an llmbatch database, or an empty one: %w", err)
	}
	defer rows.Close()
	var have []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return err
		}
		have = append(have, n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if !slices.Contains(have, n) {
			return fmt.Errorf("the database was written by an older llmbatch and needs migration %s, "+
				"which cannot be applied to a read-only database; open it once where it can be written%w", n, needsWrite)
		}
	}
	return nil
}
