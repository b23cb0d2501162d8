package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/llmbatch/llmbatch/internal/testclock"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/sqlite/migrations"
)

// t0 is the fake clock's start, a whole millisecond as the store keeps times.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// mustOpenStore opens a fresh store in a temporary directory whose clock
// stands at t0 until the test moves it.
func mustOpenStore(tb testing.TB) *Store {
	tb.Helper()
	s, _ := mustOpenStoreAt(tb, filepath.Join(tb.TempDir(), "llmbatch.db"))
	return s
}

// mustOpenStoreAt opens the store at path and returns it with its clock.
func mustOpenStoreAt(tb testing.TB, path string) (*Store, *testclock.Clock) {
	tb.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("Open(%q): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	c := testclock.New(t0)
	s.Now = c.Now
	return s, c
}

// clockOf returns a store's fake clock, installing one at t0.
func clockOf(s *Store) *testclock.Clock {
	c := testclock.New(t0)
	s.Now = c.Now
	return c
}

// sliceSource is a jobs.RequestSource over a slice, as input/ will provide
// one over a file: it records rejected lines and reports them from Err.
type sliceSource struct {
	reqs     []jobs.Request
	i        int
	failAt   int // when > 0, Next returns ioErr instead of request failAt-1
	ioErr    error
	rejected []jobs.LineError
	keep     bool // KeepsInvalid: the source hands out invalid lines (--skip-invalid)
}

func (s *sliceSource) KeepsInvalid() bool { return s.keep }

func (s *sliceSource) Next() (jobs.Request, error) {
	if s.failAt > 0 && s.i == s.failAt-1 {
		return jobs.Request{}, s.ioErr
	}
	if s.i >= len(s.reqs) {
		return jobs.Request{}, io.EOF
	}
	s.i++
	return s.reqs[s.i-1], nil
}

func (s *sliceSource) Reject(line int, reason string) {
	s.rejected = append(s.rejected, jobs.LineError{File: "input.jsonl", Line: line, Reason: reason})
}

func (s *sliceSource) Err() error {
	if len(s.rejected) == 0 {
		return nil
	}
	v := &jobs.ValidationError{}
	for _, e := range s.rejected {
		v.Add(e)
	}
	return v
}

// chatRequest is line n of a chat input with custom_id "req-n".
func chatRequest(n int) jobs.Request {
	return jobs.Request{
		Line:     n,
		CustomID: fmt.Sprintf("req-%d", n),
		Endpoint: jobs.EndpointChat,
		Model:    "deepseek/deepseek-v3",
		Body:     []byte(fmt.Sprintf(`{"model":"deepseek/deepseek-v3","messages":[{"role":"user","content":"prompt %d"}]}`, n)),
	}
}

func chatRequests(n int) []jobs.Request {
	reqs := make([]jobs.Request, n)
	for i := range reqs {
		reqs[i] = chatRequest(i + 1)
	}
	return reqs
}

// mustImport imports reqs as a job called name.
func mustImport(tb testing.TB, s *Store, name string, reqs []jobs.Request) jobs.Job {
	tb.Helper()
	job, err := s.Import(context.Background(), jobs.Job{Name: name, Source: name + ".jsonl", Fingerprint: "fp-" + name},
		&sliceSource{reqs: reqs})
	if err != nil {
		tb.Fatalf("Import(%q): %v", name, err)
	}
	return job
}

// mustClaim claims up to n requests of the job at the store's clock.
func mustClaim(tb testing.TB, s *Store, jobID int64, n int) []jobs.Request {
	tb.Helper()
	reqs, err := s.Claim(context.Background(), jobID, n, s.Now())
	if err != nil {
		tb.Fatalf("Claim: %v", err)
	}
	return reqs
}

func mustRecord(tb testing.TB, s *Store, outcomes ...jobs.Outcome) {
	tb.Helper()
	if err := s.Record(context.Background(), outcomes); err != nil {
		tb.Fatalf("Record: %v", err)
	}
}

// queryInt runs a one-number query on the writer connection.
func queryInt(tb testing.TB, s *Store, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := s.w.QueryRow(query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func mustExec(tb testing.TB, s *Store, query string, args ...any) {
	tb.Helper()
	if _, err := s.w.Exec(query, args...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

// statusOf reads one request's status and attempt count.
func statusOf(tb testing.TB, s *Store, id int64) (jobs.Status, int) {
	tb.Helper()
	var st string
	var attempts int
	if err := s.w.QueryRow(`SELECT status, attempts FROM requests WHERE id = ?`, id).Scan(&st, &attempts); err != nil {
		tb.Fatalf("read request %d: %v", id, err)
	}
	return jobs.Status(st), attempts
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "llmbatch.db")
	s, _ := mustOpenStoreAt(t, path)
	mustImport(t, s, "perm", chatRequests(3)) // makes SQLite write the WAL

	t.Run("FileModes", func(t *testing.T) {
		for _, name := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(name)
			if err != nil {
				t.Fatalf("stat: %v", err)
			}
			if got := fi.Mode().Perm(); got&^0o600 != 0 {
				t.Errorf("%s: mode = %v, want no more than -rw-------", filepath.Base(name), got)
			}
		}
		fi, _ := os.Stat(path)
		if got, want := fi.Mode().Perm(), fs.FileMode(0o600); got != want {
			t.Errorf("database mode = %v, want %v", got, want)
		}
	})
	t.Run("WAL", func(t *testing.T) {
		for _, db := range []struct {
			name string
			db   *sql.DB
		}{{"writer", s.w}, {"reader", s.r}} {
			var got string
			if err := db.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA journal_mode: %v", db.name, err)
			}
			if want := "wal"; got != want {
				t.Errorf("%s: journal_mode = %q, want %q", db.name, got, want)
			}
		}
	})
	t.Run("IntegrityCheck", func(t *testing.T) {
		got, err := s.IntegrityCheck(ctx)
		if err != nil || got != "ok" {
			t.Errorf("IntegrityCheck() = %q, %v; want \"ok\", nil", got, err)
		}
	})
	first := appliedMigrations(t, s)
	t.Run("MigrationsRecorded", func(t *testing.T) {
		if got, want := slices.Sorted(maps.Keys(first)), migrationNames(t); !slices.Equal(got, want) {
			t.Errorf("schema_migrations = %v, want %v", got, want)
		}
		for name, at := range first {
			if at < t0.UnixMilli() { // Open runs on the real clock, which is past t0
				t.Errorf("%s applied_at = %d, want a real time", name, at)
			}
		}
	})
	t.Run("ReopenIsIdempotent", func(t *testing.T) {
		if err := s.Close(); err != nil { // Close is idempotent: the cleanup closes it again
			t.Fatalf("Close: %v", err)
		}
		s2, _ := mustOpenStoreAt(t, path)
		if got := appliedMigrations(t, s2); !maps.Equal(got, first) {
			t.Errorf("schema_migrations after reopen = %v, want %v unchanged", got, first)
		}
		job, err := s2.Job(ctx, "perm")
		if err != nil || job.Total != 3 {
			t.Errorf("Job after reopen = %+v, %v; want Total 3", job, err)
		}
		if got, err := s2.IntegrityCheck(ctx); err != nil || got != "ok" {
			t.Errorf("IntegrityCheck() after reopen = %q, %v; want \"ok\", nil", got, err)
		}
	})
}

// migrationNames lists the embedded migration files in order.
func migrationNames(tb testing.TB) []string {
	tb.Helper()
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(names) == 0 {
		tb.Fatalf("no embedded migrations: %v", err)
	}
	sort.Strings(names)
	return names
}

// appliedMigrations maps each recorded migration to its applied_at.
func appliedMigrations(tb testing.TB, s *Store) map[string]int64 {
	tb.Helper()
	rows, err := s.w.Query(`SELECT name, applied_at FROM schema_migrations`)
	if err != nil {
		tb.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	applied := map[string]int64{}
	for rows.Next() {
		var name string
		var at int64
		if err := rows.Scan(&name, &at); err != nil {
			tb.Fatal(err)
		}
		applied[name] = at
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return applied
}

// mustQueryRow scans the one row of query into dest.
func mustQueryRow(tb testing.TB, s *Store, query string, dest ...any) {
	tb.Helper()
	if err := s.w.QueryRowContext(context.Background(), query).Scan(dest...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}
