package e2e

import (
	"database/sql"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

// openDB opens the database at path directly, past llmbatch, for what no
// command shows (attempts, raw rows): read-only, unless write, which a
// test uses to set up a state. The test closes it.
func openDB(t *testing.T, path string, write bool) *sql.DB {
	t.Helper()
	dsn := "file:" + path + "?_busy_timeout=10000"
	if !write {
		dsn += "&mode=ro"
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

// queryInt runs a query returning one integer against the database at path.
func queryInt(t *testing.T, path, query string) int {
	t.Helper()
	db := openDB(t, path, false)
	defer db.Close()
	var n int
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// execSQL changes the database at path directly.
func execSQL(t *testing.T, path, query string) {
	t.Helper()
	db := openDB(t, path, true)
	defer db.Close()
	if _, err := db.Exec(query); err != nil {
		t.Fatal(err)
	}
}
