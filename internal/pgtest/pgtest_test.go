package pgtest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// tables lists the tables of the database's public schema.
func tables(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(),
		`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	return names
}

func TestDSNReachesAFreshDatabase(t *testing.T) {
	t.Parallel()
	conn := connect(t, DSN(t))
	if got := tables(t, conn); len(got) != 0 {
		t.Fatalf("a fresh database has tables %v", got)
	}
	for _, sql := range []string{
		`CREATE TABLE items (id bigint PRIMARY KEY, body text NOT NULL)`,
		`INSERT INTO items VALUES (1, 'one'), (2, 'two')`,
	} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var got string
	if err := conn.QueryRow(t.Context(), `SELECT body FROM items WHERE id = 2`).Scan(&got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if want := "two"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
}

func TestDSNIsolatesEachCall(t *testing.T) {
	t.Parallel()
	a, b := DSN(t), DSN(t)
	if a == b {
		t.Fatalf("two calls gave the same DSN %s", a)
	}
	connA, connB := connect(t, a), connect(t, b)
	if _, err := connA.Exec(t.Context(), `CREATE TABLE shared_name (n int); INSERT INTO shared_name VALUES (1)`); err != nil {
		t.Fatalf("create in a: %v", err)
	}
	if got := tables(t, connB); len(got) != 0 {
		t.Fatalf("b sees a's tables %v", got)
	}
	if _, err := connB.Exec(t.Context(), `CREATE TABLE shared_name (n int)`); err != nil {
		t.Fatalf("b cannot create a table a has: %v", err)
	}
	var got int
	if err := connB.QueryRow(t.Context(), `SELECT count(*) FROM shared_name`).Scan(&got); err != nil {
		t.Fatalf("count in b: %v", err)
	}
	if got != 0 {
		t.Errorf("b's table has %d rows of a's, want 0", got)
	}
}

func TestDSNDropsTheDatabaseWhenTheTestEnds(t *testing.T) {
	t.Parallel()
	server := connect(t, DSN(t))
	var name string
	t.Run("user", func(t *testing.T) {
		// An open connection must not keep the database from being dropped.
		conn := connect(t, DSN(t))
		if err := conn.QueryRow(t.Context(), `SELECT current_database()`).Scan(&name); err != nil {
			t.Fatalf("current database: %v", err)
		}
	})
	if name == "" {
		t.Fatal("the subtest found no database")
	}
	var exists bool
	err := server.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
	if err != nil {
		t.Fatalf("look up %s: %v", name, err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

// recorder is a testing.TB that records a skip or a failure instead of
// ending the test, to see how DSN reacts to a missing server.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Skip(args ...any)          { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatal(args ...any)         { r.failed = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = fmt.Sprintf(f, a...) }

func TestDSNWithoutAServer(t *testing.T) {
	tests := []struct {
		name, require           string
		wantSkipped, wantFailed bool
	}{
		{name: "Skips", require: "", wantSkipped: true},
		{name: "SkipsWhenRequireIsNotOne", require: "yes", wantSkipped: true},
		{name: "FailsWhenRequired", require: "1", wantFailed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvServer, "")
			t.Setenv(EnvRequire, tt.require)
			r := &recorder{TB: t}
			if got := DSN(r); got != "" {
				t.Errorf("DSN = %q, want none", got)
			}
			if got := r.skipped != ""; got != tt.wantSkipped {
				t.Errorf("skipped = %v (%q), want %v", got, r.skipped, tt.wantSkipped)
			}
			if got, want := r.failed, "no PostgreSQL server: set LLMBATCH_TEST_POSTGRES"; tt.wantFailed && got != want {
				t.Errorf("failure = %q, want %q", got, want)
			}
			if !tt.wantFailed && r.failed != "" {
				t.Errorf("failed with %q, want a skip", r.failed)
			}
			if Available() {
				t.Error("Available() with no server")
			}
		})
	}
}

func TestDatabaseName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9_]+$`)
	tests := []struct{ test, wantPrefix string }{
		{"TestOpen", "llmbatch_testopen_"},
		{"TestContract/Claim/two runners", "llmbatch_testcontract_claim_two_runners_"},
		{"TestÜnicode/ä-b", "llmbatch_test_nicode_b_"},
		{"/", "llmbatch__"},
		{strings.Repeat("TestLong", 20), "llmbatch_testlongtestlong"},
	}
	for _, tt := range tests {
		got := databaseName(tt.test)
		if !strings.HasPrefix(got, tt.wantPrefix) || !valid.MatchString(got) || len(got) > 63 {
			t.Errorf("databaseName(%q) = %q, want a valid name of at most 63 bytes starting %q", tt.test, got, tt.wantPrefix)
		}
	}
	if a, b := databaseName("TestSame"), databaseName("TestSame"); a == b {
		t.Errorf("two names for one test are both %q", a)
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ server, want string }{
		{"postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:55432/db1?sslmode=disable"},
		{"postgresql://u:p@localhost/other", "postgresql://u:p@localhost/db1"},
		{"postgres://u@localhost", "postgres://u@localhost/db1"},
		{"host=127.0.0.1 port=55432 user=postgres dbname=postgres", "host=127.0.0.1 port=55432 user=postgres dbname=postgres dbname=db1"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.server, "db1")
		if err != nil || got != tt.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tt.server, got, err, tt.want)
		}
		if cfg, err := pgx.ParseConfig(got); err != nil || cfg.Database != "db1" {
			t.Errorf("%q does not reach database db1: %+v, %v", got, cfg, err)
		}
	}
	if _, err := withDatabase("postgres://[::1", "db1"); err == nil {
		t.Error("withDatabase of a broken DSN gave no error")
	}
}
