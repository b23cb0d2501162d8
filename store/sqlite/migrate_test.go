package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/sqlite/migrations"
)

// beforeEmbeddings is the last migration of a database that refuses
// embeddings requests.
const beforeEmbeddings = "0005_job_settings.sql"

// TestMigrationEmbeddingsKeepsData builds a database as llmbatch left it
// before embeddings (migrations up to 0005), with jobs, requests in every
// state, attempts, results, a cache key, an invalid line and a run state;
// opening it applies 0006, which rebuilds requests. Every row of every
// table is still there, byte for byte; the indexes are those it had;
// integrity and foreign keys check clean; foreign keys are on again and
// still cascade; and an embeddings request can now be stored.
func TestMigrationEmbeddingsKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := openMigrated(ctx, path, beforeEmbeddings)
	if err != nil {
		t.Fatal(err)
	}
	clockOf(old)
	if _, err := old.Import(ctx, jobs.Job{Name: "e", Source: "e.jsonl"}, &sliceSource{reqs: []jobs.Request{embeddingRequest(1)}}); err == nil {
		t.Fatal("the database before 0006 stored an embeddings request: the test does not start from the old schema")
	}
	fillOldDatabase(t, old)
	before, beforeIndexes := dumpTables(t, old.w), indexes(t, old.w)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := mustOpenMigrated(t, path, embeddings)
	if got := dumpTables(t, s.w); !equalDumps(t, got, before) {
		t.Error("the migration changed the data")
	}
	checkSound(t, s)
	if got := indexes(t, s.w); !slices.Equal(got, beforeIndexes) {
		t.Errorf("indexes after the migration:\n%s\nwant those before it:\n%s", strings.Join(got, "\n"), strings.Join(beforeIndexes, "\n"))
	}
	if got := queryInt(t, s, `PRAGMA foreign_keys`); got != 1 {
		t.Errorf("PRAGMA foreign_keys = %d after the migration, want 1", got)
	}
	job := mustImport(t, s, "emb", []jobs.Request{embeddingRequest(1), embeddingRequest(2)})
	mustRecord(t, s, succeed(mustClaim(t, s, job.ID, 1)[0]))
	if got := queryInt(t, s, `SELECT count(*) FROM requests WHERE endpoint = '/embeddings'`); got != 2 {
		t.Errorf("%d embeddings requests stored, want 2", got)
	}
	// The references of attempts and results reach the new table: deleting
	// a request deletes what refers to it.
	id := queryInt(t, s, `SELECT request_id FROM results JOIN requests ON requests.id = request_id WHERE custom_id = 'req-1'`)
	mustExec(t, s, `DELETE FROM requests WHERE id = ?`, id)
	if n := queryInt(t, s, `SELECT (SELECT count(*) FROM results WHERE request_id = ?1) + (SELECT count(*) FROM attempts WHERE request_id = ?1)`, id); n != 0 {
		t.Errorf("%d attempts and results of a deleted request left: ON DELETE CASCADE no longer holds", n)
	}
}

// embeddings is the migration TestMigrationEmbeddingsKeepsData applies.
const embeddings = "0006_embeddings.sql"

// mustOpenMigrated opens the store at path with the migrations up to last
// applied, and a clock at t0.
func mustOpenMigrated(t *testing.T, path, last string) *Store {
	t.Helper()
	s, err := openMigrated(context.Background(), path, last)
	if err != nil {
		t.Fatalf("open %s with the migrations up to %s: %v", path, last, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	clockOf(s)
	return s
}

// embeddingRequest is embeddings request n.
func embeddingRequest(n int) jobs.Request {
	return jobs.Request{Line: n, CustomID: fmt.Sprintf("emb-%d", n), Endpoint: jobs.EndpointEmbeddings,
		Model: "text-embedding-3-small", CacheKey: fmt.Sprintf("emb-key-%d", n),
		Body: []byte(fmt.Sprintf(`{"model":"text-embedding-3-small","input":"text %d"}`, n))}
}

// fillOldDatabase stores what a database of an earlier llmbatch holds:
// two jobs, requests succeeded, failed, waiting to retry, pending and
// invalid, their attempts and results, and a run state.
func fillOldDatabase(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	reqs := chatRequests(5)
	reqs[0].CacheKey, reqs[0].Metadata = "key-1", []byte(`{"row": 1.50}`)
	reqs = append(reqs, jobs.Request{Line: 6, CustomID: "bad", Endpoint: jobs.EndpointChat, Body: []byte(`{`),
		Status: jobs.StatusFailed, Invalid: "a.jsonl:6: invalid JSON"})
	a := mustImport(t, s, "a", reqs)
	claimed := mustClaim(t, s, a.ID, 3)
	mustRecord(t, s, answer(claimed[0], "one"), failPermanently(claimed[1]),
		jobs.Outcome{Request: claimed[2], Next: jobs.StatusPending, CountAttempt: true, NotBefore: t0.Add(time.Minute),
			Attempt: &jobs.Attempt{Number: 1, StartedAt: t0, StatusCode: 429, Class: jobs.ClassRateLimited, Message: "slow down"},
			Failure: &jobs.Failure{Class: jobs.ClassRateLimited, StatusCode: 429, Message: "slow down", RequestID: "req-429"}})
	b := mustImport(t, s, "b", []jobs.Request{{Line: 1, CustomID: "c", Endpoint: jobs.EndpointCompletions, Model: "m",
		Body: []byte(`{"model":"m","prompt":"p"}`)}})
	mustRecord(t, s, succeed(mustClaim(t, s, b.ID, 1)[0]))
	if err := s.SaveRunState(ctx, a.ID, jobs.RunState{Concurrency: 4, MaxConcurrency: 8, RPM: 60}); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]int{"requests": 7, "attempts": 4, "results": 2, "run_state": 1} {
		if got := queryInt(t, s, `SELECT count(*) FROM `+table); got != want {
			t.Fatalf("the old database has %d rows in %s, want %d", got, table, want)
		}
	}
}

// checkSound runs SQLite's integrity and foreign key checks.
func checkSound(t *testing.T, s *Store) {
	t.Helper()
	if got, err := s.IntegrityCheck(context.Background()); err != nil || got != "ok" {
		t.Errorf("integrity_check = %q, %v; want ok", got, err)
	}
	rows, err := s.w.Query(`PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		t.Error("PRAGMA foreign_key_check lists broken references")
	}
}

// migratedTables are the tables whose rows the migration must keep.
var migratedTables = []string{"jobs", "requests", "attempts", "results", "run_state"}

// dumpTables renders every row of the migratedTables, in rowid order, by
// column name, so that a column moved or changed shows.
func dumpTables(t *testing.T, db *sql.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range migratedTables {
		rows, err := db.Query(`SELECT * FROM ` + table + ` ORDER BY rowid`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i, c := range cols {
				fmt.Fprintf(&b, "%s=%#v ", c, vals[i])
			}
			out[table] = append(out[table], b.String())
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

func equalDumps(t *testing.T, got, want map[string][]string) bool {
	t.Helper()
	same := true
	for _, table := range migratedTables {
		if !slices.Equal(got[table], want[table]) {
			same = false
			t.Errorf("%s:\ngot  %s\nwant %s", table, strings.Join(got[table], "\n     "), strings.Join(want[table], "\n     "))
		}
	}
	return same
}

// indexes lists the database's indexes with their definitions.
func indexes(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name || ' ON ' || tbl_name || ': ' || coalesce(sql, '') FROM sqlite_master WHERE type = 'index' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestForeignKeyCheck: the check a migration with foreign keys off runs
// before its commit finds a row whose reference is broken.
func TestForeignKeyCheck(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	conn, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, `PRAGMA foreign_keys = ON`)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := foreignKeyCheck(ctx, tx); err != nil {
		t.Fatalf("a fresh database: %v", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO attempts (job_id, request_id, number, started_at, duration_ms) VALUES (7, 9, 1, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	err = foreignKeyCheck(ctx, tx)
	if err == nil || !strings.Contains(err.Error(), "of attempts refers to a missing row of") {
		t.Errorf("foreignKeyCheck = %v, want a broken reference of attempts", err)
	}
}

// BenchmarkMigrationEmbeddings times opening a database of 100,000
// requests (300-byte bodies), each with an attempt and a 1 KB result, as
// llmbatch left it before 0006: the rebuild of requests that 0006 is. Each
// iteration opens a fresh copy, made outside the timer.
func BenchmarkMigrationEmbeddings(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	dir := b.TempDir()
	old := filepath.Join(dir, "old.db")
	s, err := openMigrated(ctx, old, beforeEmbeddings)
	if err != nil {
		b.Fatal(err)
	}
	mustImport(b, s, "big", benchRequests(n))
	raw := `'{"id":"x","choices":[{"message":{"content":"` + strings.Repeat("y", 1000) + `"}}]}'`
	mustExec(b, s, `INSERT INTO attempts (job_id, request_id, number, started_at, duration_ms, status_code)
		SELECT job_id, id, 1, 0, 700, 200 FROM requests`)
	mustExec(b, s, `INSERT INTO results (request_id, job_id, status_code, raw, latency_ms, created_at)
		SELECT id, job_id, 200, `+raw+`, 700, 0 FROM requests`)
	mustExec(b, s, `UPDATE requests SET status = 'succeeded', attempts = 1`)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(old)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		path := filepath.Join(dir, fmt.Sprintf("copy-%d.db", i))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		s, err := Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		os.Remove(path)
		b.StartTimer()
	}
}

// TestForeignKeysOffMarker: the marker is found whatever an editor did to
// its line's end or the file's start, and only on the first line.
func TestForeignKeysOffMarker(t *testing.T) {
	for text, want := range map[string]bool{
		"-- migrate: foreign_keys off\nCREATE TABLE t (x);":       true,
		"-- migrate: foreign_keys off\r\nCREATE TABLE t (x);":     true,
		"\ufeff-- migrate: foreign_keys off\nCREATE TABLE t (x);": true,
		"-- migrate: foreign_keys off":                            true,
		"-- migrate: foreign_keys off \n":                         true,
		"CREATE TABLE t (x);\n-- migrate: foreign_keys off\n":     false,
		"-- migrate: foreign_keys offline\n":                      false,
		"":                                                        false,
	} {
		if got := wantsForeignKeysOff(text); got != want {
			t.Errorf("wantsForeignKeysOff(%q) = %v, want %v", text, got, want)
		}
	}
	// Every embedded migration that rebuilds a table says so.
	text, err := fs.ReadFile(migrations.FS, "0006_embeddings.sql")
	if err != nil {
		t.Fatal(err)
	}
	if !wantsForeignKeysOff(string(text)) {
		t.Error("0006_embeddings.sql rebuilds requests but does not turn foreign keys off")
	}
}
