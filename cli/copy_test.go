package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/clitest"
	"github.com/llmbatch/llmbatch/internal/pgtest"
	"github.com/llmbatch/llmbatch/store"
)

// TestCopyUsage: a copy that names no job, or not exactly one other
// database, is a usage error (exit 2) that says what to give.
func TestCopyUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"NoJob", []string{"copy", "--to", "x.db"}, "copy needs the JOB"},
		{"NoDatabase", []string{"copy", "golden"}, "give --to DSN"},
		{"Both", []string{"copy", "golden", "--to", "x.db", "--from", "y.db"}, "not both"},
		{"EmptyName", []string{"copy", "golden", "--to", "x.db", "--job", ""}, "--job needs a name"},
		{"TwoJobs", []string{"copy", "a", "b", "--to", "x.db"}, "copy takes one JOB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, nil, append([]string{"--db", filepath.Join(t.TempDir(), "none.db")}, tc.args...)...)
			if res.Code != ExitUsage || !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", res.Code, ExitUsage, tc.want, res.Stderr)
			}
		})
	}
}

// exportFormats are the exports a copy must write byte for byte as the
// original does.
var exportFormats = [][]string{
	{"--format", "openai"},
	{"--format", "openai", "--errors", "ERRORS"},
	{"--format", "flat", "--with-request"},
	{"--format", "merged"},
	{"--format", "csv", "--with-request"},
	{"--format", "parquet", "--with-request"},
}

// sameExports fails t unless every export of job a of db and job b of
// other is the same, byte for byte, but for the job's name in the ids of
// the OpenAI Batch lines (batch_req_JOB_LINE) when a and b differ.
func sameExports(t *testing.T, db, a, other, b string) {
	t.Helper()
	dir := t.TempDir()
	export := func(db, job, name string, args []string) ([]byte, []byte) {
		out, errs := filepath.Join(dir, name), filepath.Join(dir, name+".errors")
		os.Remove(errs) // an earlier format's
		args = append([]string{"--db", db, "export", job, "-o", out}, args...)
		for i := range args {
			if args[i] == "ERRORS" {
				args[i] = errs
			}
		}
		if res := runCLI(t, nil, args...); res.Code != ExitOK {
			t.Fatalf("export %v: exit %d\n%s", args, res.Code, res.Stderr)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		errors, _ := os.ReadFile(errs)
		return got, errors
	}
	for _, args := range exportFormats {
		want, wantErrs := export(db, a, "a", args)
		got, gotErrs := export(other, b, "b", args)
		if a != b && args[1] == "openai" {
			got = bytes.ReplaceAll(got, []byte(`"batch_req_`+b+`_`), []byte(`"batch_req_`+a+`_`))
			gotErrs = bytes.ReplaceAll(gotErrs, []byte(`"batch_req_`+b+`_`), []byte(`"batch_req_`+a+`_`))
		}
		if len(want) == 0 || !bytes.Equal(got, want) || !bytes.Equal(gotErrs, wantErrs) {
			t.Errorf("export %v of the copy: %d bytes (errors %d), want the original's %d (errors %d), byte for byte",
				args, len(got), len(gotErrs), len(want), len(wantErrs))
		}
	}
}

// TestCopyGoldenJob: a copy to a new database, and one back under another
// name, export byte for byte what the original does in every format, and
// status reads the same; the original is unchanged.
func TestCopyGoldenJob(t *testing.T) {
	db, _, _ := clitest.GoldenJob(t)
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), "to.db")
	out := mustCopyCLI(t, "--db", db, "copy", "golden", "--to", to)
	for _, want := range []string{"copied job golden from " + db + " to " + to, "10 requests, 11 attempts, 6 results, 0 provider batches",
		"the source is unchanged", "llmbatch --db " + to + " status golden", "llmbatch --db " + to + " run golden"} {
		if !strings.Contains(out, want) {
			t.Errorf("copy printed no %q:\n%s", want, out)
		}
	}
	sameExports(t, db, "golden", to, "golden")
	back := filepath.Join(t.TempDir(), "back.db")
	if out := mustCopyCLI(t, "--db", back, "copy", "golden", "--from", to, "--job", "golden-2"); !strings.Contains(out, "copied job golden as golden-2 from ") {
		t.Errorf("a renamed copy does not say so:\n%s", out)
	}
	sameExports(t, db, "golden", back, "golden-2")
	if a, b := statusJSON(t, db, "golden"), statusJSON(t, back, "golden-2"); !sameStatus(a, b) {
		t.Errorf("status of the copy:\n%v\nwant the original's\n%v", b, a)
	}
	if after, err := os.ReadFile(db); err != nil || !bytes.Equal(before, after) {
		t.Errorf("the source database changed (%v)", err)
	}
}

// sameStatus compares two jobs' status --json but for the job's name and
// the moment each was read.
func sameStatus(a, b map[string]any) bool {
	for _, m := range []map[string]any{a, b} {
		delete(m, "job")
		if tp, ok := m["throughput"].(map[string]any); ok {
			delete(tp, "at")
		}
	}
	return reflect.DeepEqual(a, b)
}

// TestCopyPostgres: a copy to a PostgreSQL database exports byte for byte
// what the original does, and one back to SQLite too; the message shows
// the DSN without its password.
func TestCopyPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	db, _, _ := clitest.GoldenJob(t)
	withPassword := strings.Replace(dsn, "postgres://postgres@", "postgres://postgres:s3cret@", 1)
	out := mustCopyCLI(t, "--db", db, "copy", "golden", "--to", withPassword)
	if strings.Contains(out, "s3cret") || !strings.Contains(out, store.Display(withPassword)) {
		t.Errorf("copy printed the password, or not the DSN without it:\n%s", out)
	}
	sameExports(t, db, "golden", dsn, "golden")
	back := filepath.Join(t.TempDir(), "back.db")
	mustCopyCLI(t, "--db", back, "copy", "golden", "--from", dsn)
	sameExports(t, db, "golden", back, "golden")
}

// TestCopyRefused: a name the target holds and a job a live run works are
// refused (exit 1) with what to do, and nothing is copied; so is a job
// the source does not hold.
func TestCopyRefused(t *testing.T) {
	db, st, _ := clitest.GoldenJob(t)
	to := filepath.Join(t.TempDir(), "to.db")
	mustCopyCLI(t, "--db", db, "copy", "golden", "--to", to)
	res := runCLI(t, nil, "--db", db, "copy", "golden", "--to", to)
	if res.Code != ExitError || !strings.Contains(res.Stderr, to+` has a job named "golden" already`) ||
		!strings.Contains(res.Stderr, "--job NEW") {
		t.Errorf("a copy onto a taken name: exit %d\n%s", res.Code, res.Stderr)
	}
	res = runCLI(t, nil, "--db", db, "copy", "nope", "--to", to)
	if res.Code != ExitError || !strings.Contains(res.Stderr, `no job named "nope"`) {
		t.Errorf("a copy of a missing job: exit %d\n%s", res.Code, res.Stderr)
	}
	owner := newOwner() // this process: alive
	st.Now = time.Now   // and its heartbeat fresh
	if err := st.Lock(context.Background(), 1, owner, lockStale, nil); err != nil {
		t.Fatal(err)
	}
	res = runCLI(t, nil, "--db", db, "copy", "golden", "--to", to, "--job", "live")
	if res.Code != ExitError || !strings.Contains(res.Stderr, "being worked by a live run (pid") ||
		!strings.Contains(res.Stderr, owner.Host) {
		t.Errorf("a copy of a job a live run works: exit %d\n%s", res.Code, res.Stderr)
	}
	if list := jobNames(t, to); strings.Join(list, " ") != "golden" {
		t.Errorf("the target holds %v, want only the first copy", list)
	}
}

func mustCopyCLI(t *testing.T, args ...string) string {
	t.Helper()
	res := runCLI(t, nil, args...)
	if res.Code != ExitOK {
		t.Fatalf("llmbatch %s: exit %d\n%s", strings.Join(args, " "), res.Code, res.Stderr)
	}
	return res.Stdout
}

func jobNames(t *testing.T, db string) []string {
	t.Helper()
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	list, err := st.Jobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range list {
		names = append(names, j.Name)
	}
	return names
}
