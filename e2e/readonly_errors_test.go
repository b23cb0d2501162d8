package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadOnlyViewsSayWhyTheyCannotRead: on a read-only disk, a database
// the reading commands cannot read without writing to it (it needs a
// migration; its -wal file holds commits but its -shm file is gone) gets
// the message that says so and what to do, not only the read-write open's
// "read-only file system".
func TestReadOnlyViewsSayWhyTheyCannotRead(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, db string)
		want  string
	}{
		{"NeedsMigration", func(t *testing.T, db string) {
			execSQL(t, db, `DELETE FROM schema_migrations WHERE name = (SELECT max(name) FROM schema_migrations)`)
		}, "needs migration"},
		{"WALWithoutSHM", func(t *testing.T, db string) {
			// Keep the -wal file: copy the database files while a
			// connection holds them open, as a killed run leaves them.
			h := openDB(t, db, true)
			defer h.Close()
			if _, err := h.Exec(`PRAGMA wal_autocheckpoint = 0; UPDATE jobs SET default_model = 'x'`); err != nil {
				t.Fatal(err)
			}
			for _, ext := range []string{"", "-wal"} {
				b, err := os.ReadFile(db + ext)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(db+".copy"+ext, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			h.Close()
			for _, ext := range []string{"", "-wal", "-shm"} {
				os.Remove(db + ext)
			}
			for _, ext := range []string{"", "-wal"} {
				if err := os.Rename(db+".copy"+ext, db+ext); err != nil {
					t.Fatal(err)
				}
			}
		}, "-wal holds commits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dbDir := mountTmpfs(t, "16m")
			file := writeLines(t, t.TempDir(), "ro.jsonl", chatLines(3)...)
			db := filepath.Join(dbDir, "ro.db")
			if res := runCLI(t, nil, "--db", db, "import", file); res.Code != 0 {
				t.Fatalf("import: exit %d\n%s", res.Code, res.Stderr)
			}
			tc.setup(t, db)
			remount(t, dbDir, "", syscall.MS_RDONLY)
			for _, args := range [][]string{{"status", "ro"}, {"jobs"}, {"export", "ro"}} {
				res := runCLI(t, nil, append([]string{"--db", db}, args...)...)
				if res.Code != exitError || !strings.Contains(res.Stderr, tc.want) {
					t.Errorf("%s: exit %d, want 1 with a message that says %q\n%s", args[0], res.Code, tc.want, res.Stderr)
				}
			}
		})
	}
}
