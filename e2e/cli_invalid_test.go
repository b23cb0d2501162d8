package e2e

// Every invalid line of a file is listed at once, duplicate custom_ids
// among them, and import, run and --dry-run list the same lines.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/cli"
	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
)

// listedLines returns the lines of stderr that name a line of file
// ("FILE:LINE: reason"), and the "… and N more" line if any.
func listedLines(stderr, file string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, file+":") || strings.HasPrefix(l, "… and ") {
			out = append(out, l)
		}
	}
	return out
}

// checkListedEverywhere runs import, run, and both dry runs of file (with
// extra flags) and checks that each fails with exit 1, lists exactly want,
// sends nothing and stores nothing.
func checkListedEverywhere(t *testing.T, file string, want []string, extra ...string) {
	t.Helper()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	db := filepath.Join(t.TempDir(), "t.db")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"Import", []string{"--db", db, "import"}},
		{"ImportDryRun", []string{"--db", db, "import", "--dry-run"}},
		{"Run", []string{"--db", db, "run", "--base-url", srv.URL()}},
		{"RunDryRun", []string{"--db", db, "run", "--dry-run", "--base-url", srv.URL()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, keyEnv(), append(append(tc.args, extra...), file)...)
			if res.Code != exitError {
				t.Errorf("exit %d, want 1", res.Code)
			}
			if got := listedLines(res.Stderr, file); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("listed:\n%s\nwant:\n%s\nstderr:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), res.Stderr)
			}
			if !strings.Contains(res.Stderr, "nothing was imported or sent") {
				t.Errorf("stderr does not say nothing was imported:\n%s", res.Stderr)
			}
		})
	}
	if calls := settled(t, srv).Calls; calls != 0 {
		t.Errorf("%d requests sent for an invalid file", calls)
	}
	if _, err := os.Stat(db); err == nil {
		if n := queryInt(t, db, `SELECT count(*) FROM requests`); n != 0 {
			t.Errorf("%d requests stored", n)
		}
	}
}

// TestInvalidLinesAndDuplicatesListedAtOnce: duplicates after an invalid
// line are listed too, in line order among the other errors.
func TestInvalidLinesAndDuplicatesListedAtOnce(t *testing.T) {
	dir := t.TempDir()
	line := func(id, content string) string {
		return fmt.Sprintf(`{"custom_id":%q,"model":"m","messages":[{"role":"user","content":%q}]}`, id, content)
	}
	file := writeLines(t, dir, "p.jsonl",
		line("a", "1"), // 1
		line("b", "2"), // 2
		`{"custom_id":"x","model":"m","messages":[}`, // 3 invalid JSON
		line("c", "4"),                  // 4
		line("a", "5"),                  // 5 duplicate of 1
		`{"custom_id":"y","model":"m"}`, // 6 no messages
		line("d", "7"),                  // 7
		line("b", "8"),                  // 8 duplicate of 2
		line("c", "9"),                  // 9 duplicate of 4
		`{"custom_id":"a","model":"m","messages":[{"role":"user","content":"t"}],"temperature":9}`, // 10 out of range (not also a duplicate)
		line("e", "11"), // 11
	)
	checkListedEverywhere(t, file, []string{
		file + `:3: invalid JSON` + reasonTail(t, file, 3),
		file + `:5: duplicate custom_id "a" (first used on line 1)`,
		file + `:6: no "messages" (chat) or "prompt" (completions)`,
		file + `:8: duplicate custom_id "b" (first used on line 2)`,
		file + `:9: duplicate custom_id "c" (first used on line 4)`,
		file + `:10: "temperature" must be a number from 0 to 2, got 9`,
	})
}

// reasonTail is what the reader says after "invalid JSON" for line n of
// file (the column and what it found), taken from an import of the file
// alone, so that the test does not depend on that wording.
func reasonTail(t *testing.T, file string, n int) string {
	t.Helper()
	res := runCLI(t, nil, "import", "--dry-run", file)
	prefix := fmt.Sprintf("%s:%d: invalid JSON", file, n)
	for _, l := range strings.Split(res.Stderr, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return rest
		}
	}
	t.Fatalf("no %q in:\n%s", prefix, res.Stderr)
	return ""
}

// TestManyInvalidLinesListFirstLines: past jobs.MaxReported errors, the
// list holds the first lines whether an error was found by the reader or,
// later, as a duplicate by the store, and the rest are counted.
func TestManyInvalidLinesListFirstLines(t *testing.T) {
	dir := t.TempDir()
	lines := []any{chatLine(0), chatLine(0)} // line 2: a duplicate
	for range jobs.MaxReported + 10 {
		lines = append(lines, `{"model":"m"}`) // lines 3-62: no messages
	}
	lines = append(lines, chatLine(1), chatLine(1)) // line 64: a duplicate, counted only
	file := writeLines(t, dir, "many.jsonl", lines...)
	want := []string{file + `:2: duplicate custom_id "req-0" (first used on line 1)`}
	for n := 3; len(want) < jobs.MaxReported; n++ {
		want = append(want, fmt.Sprintf(`%s:%d: no "messages" (chat) or "prompt" (completions)`, file, n))
	}
	want = append(want, "… and 12 more invalid lines")
	checkListedEverywhere(t, file, want)
}

// TestCLIDatasetDuplicatesListedAtOnce: the same for a CSV dataset with
// --id-field, whose rows become requests through a template.
func TestCLIDatasetDuplicatesListedAtOnce(t *testing.T) {
	dir := t.TempDir()
	data := writeFile(t, dir, "rows.csv", "id,q\na,one\na,two\nb\nc,three\nc,four\n,five\nd,six\n")
	tmpl := writeFile(t, dir, "q.tmpl", "{{.q}}")
	checkListedEverywhere(t, data, []string{
		data + `:3: duplicate custom_id "a" (first used on line 2)`,
		data + `:4: 1 field, but the header has 2`,
		data + `:6: duplicate custom_id "c" (first used on line 5)`,
		data + `:7: field "id" (--id-field) is empty`,
	}, "--template", tmpl, "--id-field", "id", "--model", "m")
}

// TestSkipInvalidDuplicatesAfterInvalidLine: with --skip-invalid nothing
// changed: the duplicate after an invalid line is kept as a failed request
// beside it, and the valid lines are stored.
func TestSkipInvalidDuplicatesAfterInvalidLine(t *testing.T) {
	dir := t.TempDir()
	file := writeLines(t, dir, "skip.jsonl", chatLine(0), `{"model":"m"}`, chatLine(0), chatLine(1))
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, nil, "--db", db, "import", "--skip-invalid", file)
	if res.Code != cli.ExitOK || !strings.Contains(res.Stderr, "2 of 4 lines are invalid") {
		t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
	}
	for _, w := range []string{file + `:2: no "messages"`, file + `:3: duplicate custom_id "req-0" (first used on line 1)`} {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, res.Stderr)
		}
	}
	if got := queryInt(t, db, `SELECT count(*) FROM requests WHERE status = 'pending'`); got != 2 {
		t.Errorf("%d pending requests, want 2", got)
	}
}
