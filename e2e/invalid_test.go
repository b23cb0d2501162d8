package e2e

// Bad input at scale, and --skip-invalid end to end.

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// badLines are the invalid lines of writeBadFile, one reason each.
func badLines(n int) map[int]string {
	return map[int]string{
		17:    `{"model":"m","messages":[{"role":"user","content":"oops"}`,                    // invalid JSON
		n / 2: `{"custom_id":"no-messages","model":"m"}`,                                      // no messages
		n - 1: `{"model":"m","messages":[{"role":"user","content":"hot"}],"temperature":7.5}`, // out of range
	}
}

// wantReasons are the reasons the three bad lines are reported with.
var wantReasons = []string{"invalid JSON", `no "messages"`, `"temperature" must be a number from 0 to 2, got 7.5`}

// writeBadFile writes n lines, each a distinct chat request the fake server
// answers ("prompt-N", custom_id line-N), except badLines(n).
func writeBadFile(t *testing.T, dir string, n int) string {
	t.Helper()
	path := filepath.Join(dir, "big.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := badLines(n)
	w := bufio.NewWriterSize(f, 1<<20)
	head := []byte(`{"model":"m","messages":[{"role":"user","content":"prompt-`)
	tail := []byte("\"}]}\n")
	var num []byte
	for i := 1; i <= n; i++ {
		if b, ok := bad[i]; ok {
			w.WriteString(b)
			w.WriteByte('\n')
			continue
		}
		w.Write(head)
		num = fmt.Appendf(num[:0], "%d", i)
		w.Write(num)
		w.Write(tail)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

var lineRef = regexp.MustCompile(`(?m)^\s*\S*big\.jsonl:(\d+): (.*)$`)

// reportedLines returns the line numbers text names as FILE:LINE, in order,
// and checks each bad line's reason.
func reportedLines(t *testing.T, text string, n int) []string {
	t.Helper()
	var got []string
	lines := []int{17, n / 2, n - 1}
	for _, m := range lineRef.FindAllStringSubmatch(text, -1) {
		got = append(got, m[1])
		if i := slices.Index(lines, atoi(t, m[1])); i >= 0 && !strings.Contains(m[2], wantReasons[i]) {
			t.Errorf("line %s: reason %q, want it to say %q", m[1], m[2], wantReasons[i])
		}
	}
	return got
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBadInputAtScale: a million-line file with three bad lines. Without
// --skip-invalid the error names exactly those three and nothing is stored
// or sent; with it the rest is imported and the three are failed requests.
func TestBadInputAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("a million-line file; skipped with -short")
	}
	const n = 1_000_000
	dir := t.TempDir()
	start := time.Now()
	file := writeBadFile(t, dir, n)
	t.Logf("wrote %d lines in %s", n, time.Since(start).Round(time.Millisecond))
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	db := filepath.Join(dir, "t.db")
	want := []string{"17", "500000", "999999"}

	start = time.Now()
	res := runCLI(t, keyEnv(), runArgs(db, srv, "--quiet", file)...)
	t.Logf("run without --skip-invalid: %s", time.Since(start).Round(time.Millisecond))
	if res.Code != exitError {
		t.Fatalf("run: exit %d, want 1\n%s", res.Code, res.Stderr)
	}
	if got := reportedLines(t, res.Stderr, n); !slices.Equal(got, want) {
		t.Errorf("reported lines %v, want exactly %v:\n%s", got, want, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "nothing was imported or sent") || !strings.Contains(res.Stderr, "--skip-invalid") {
		t.Errorf("the message should say nothing was imported and name --skip-invalid:\n%s", res.Stderr)
	}
	if jobsN, reqs := queryInt(t, db, `SELECT count(*) FROM jobs`), queryInt(t, db, `SELECT count(*) FROM requests`); jobsN+reqs != 0 {
		t.Errorf("%d jobs and %d requests stored, want none", jobsN, reqs)
	}
	if calls := srv.Stats().Calls; calls != 0 {
		t.Errorf("the fake API saw %d calls, want none", calls)
	}

	start = time.Now()
	res = runCLI(t, nil, "--db", db, "import", "--skip-invalid", file)
	t.Logf("import --skip-invalid: %s", time.Since(start).Round(time.Millisecond))
	if res.Code != 0 {
		t.Fatalf("import --skip-invalid: exit %d\n%s", res.Code, res.Stderr)
	}
	if got := reportedLines(t, res.Stderr, n); !slices.Equal(got, want) {
		t.Errorf("import listed lines %v, want %v:\n%s", got, want, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "3 of 1000000 lines are invalid") {
		t.Errorf("import should count the invalid lines:\n%s", res.Stderr)
	}
	if got := queryInt(t, db, `SELECT count(*) FROM requests WHERE status = 'pending'`); got != n-3 {
		t.Errorf("%d pending requests, want %d", got, n-3)
	}
	if got := queryInt(t, db, `SELECT count(*) FROM requests WHERE status = 'failed' AND error_class = 'invalid_input'`); got != 3 {
		t.Errorf("%d invalid_input failures, want 3", got)
	}
	// The same file, with the flag or without, is the same job.
	for _, args := range [][]string{{"--skip-invalid", file}, {file}} {
		res = runCLI(t, nil, append([]string{"--db", db, "import"}, args...)...)
		if res.Code != 0 || !strings.Contains(res.Stdout, "already imported") {
			t.Errorf("import %v again: exit %d, want the stored job\n%s%s", args, res.Code, res.Stdout, res.Stderr)
		}
	}
	if calls := srv.Stats().Calls; calls != 0 {
		t.Errorf("the fake API saw %d calls, want none", calls)
	}
}

// TestSkipInvalidRun: a file with three bad lines and a duplicate custom_id
// runs to the end with --skip-invalid: every valid line is sent once, the
// run exits 3, the export gives the four an invalid_input error, and retry
// leaves them failed. (TestBadInputAtScale imports a million lines; running
// them all against the fake server would take minutes, so the run is here.)
func TestSkipInvalidRun(t *testing.T) {
	const n = 2000
	dir := t.TempDir()
	file := writeBadFile(t, dir, n)
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, `{"custom_id":"line-5","model":"m","messages":[{"role":"user","content":"dup"}]}`) // line 2001
	f.Close()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	db := filepath.Join(dir, "t.db")

	res := runCLI(t, keyEnv(), runArgs(db, srv, "--quiet", "--skip-invalid", file)...)
	if res.Code != exitSomeFailed {
		t.Fatalf("run --skip-invalid: exit %d, want 3\n%s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "4 of 2001 lines are invalid") || !strings.Contains(res.Stderr, "4 requests failed") {
		t.Errorf("stderr should count the 4 invalid lines and the 4 failures:\n%s", res.Stderr)
	}
	if got, want := reportedLines(t, res.Stderr, n), []string{"17", "1000", "1999", "2001"}; !slices.Equal(got, want) {
		t.Errorf("run listed lines %v, want %v:\n%s", got, want, res.Stderr)
	}
	st := settled(t, srv)
	if st.Calls != n-3 || st.Served != n-3 {
		t.Errorf("the fake API saw %d calls (%d served), want %d: each valid line once, no invalid one", st.Calls, st.Served, n-3)
	}

	lines := exportJSONL(t, db, "big", "openai")
	if len(lines) != n+1 {
		t.Fatalf("export: %d lines, want %d", len(lines), n+1)
	}
	wantFailed := map[int]string{16: "line-17", 999: "no-messages", 1998: "line-1999", 2000: "line-2001"}
	for i, l := range lines {
		id, isBad := wantFailed[i]
		if !isBad {
			if l["error"] != nil {
				t.Errorf("export line %d: error %v, want none", i+1, l["error"])
			}
			continue
		}
		e, _ := l["error"].(map[string]any)
		if l["custom_id"] != id || e == nil || e["code"] != "invalid_input" || l["response"] != nil ||
			!strings.Contains(fmt.Sprint(e["message"]), fmt.Sprintf("big.jsonl:%d: ", i+1)) {
			t.Errorf("export line %d = %v, want custom_id %s, response null and error invalid_input naming the line", i+1, l, id)
		}
	}
	errFile := filepath.Join(dir, "errors.jsonl")
	out := filepath.Join(dir, "out.jsonl")
	if res := runCLI(t, nil, "--db", db, "export", "big", "-o", out, "--errors", errFile); res.Code != 0 {
		t.Fatalf("export --errors: exit %d\n%s", res.Code, res.Stderr)
	}
	b, err := os.ReadFile(errFile)
	if err != nil {
		t.Fatal(err)
	}
	errs := decodeLines(t, string(b))
	if len(errs) != 4 {
		t.Errorf("--errors file has %d lines, want the 4 invalid ones", len(errs))
	}

	if res := runCLI(t, nil, "--db", db, "retry", "big"); res.Code != 0 || !strings.Contains(res.Stdout, " 0 requests") {
		t.Errorf("retry: exit %d, want 0 requests back to pending\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	res = runCLI(t, keyEnv(), runArgs(db, srv, "--quiet", file)...)
	if res.Code != exitSomeFailed {
		t.Errorf("run again without --skip-invalid: exit %d, want 3 (the same job, still with its 4 failures)\n%s", res.Code, res.Stderr)
	}
	if st := settled(t, srv); st.Calls != n-3 {
		t.Errorf("the fake API saw %d calls after the rerun, want still %d", st.Calls, n-3)
	}
	s := statusJSON(t, db, "big")
	if count(t, s, "failed") != 4 || count(t, s, "succeeded") != n-3 {
		t.Errorf("status: %v, want 4 failed and %d succeeded", s["counts"], n-3)
	}
	// status lists them among the error classes, though they had no attempt.
	found := false
	for _, c := range s["errors"].([]any) {
		c := c.(map[string]any)
		if c["class"] == "invalid_input" {
			found = c["count"] == 4.0 && strings.Contains(fmt.Sprint(c["example"]), "big.jsonl:")
		}
	}
	if !found {
		t.Errorf("status errors = %v, want invalid_input with count 4 and an example naming the file", s["errors"])
	}
}

// TestNotAFileOfRequests: a file in another encoding, a binary file (here
// a gzipped JSONL file), a UTF-16 file, an empty file and a directory each
// get exactly one line, with or without --skip-invalid, and nothing is
// stored.
func TestNotAFileOfRequests(t *testing.T) {
	dir := t.TempDir()
	latin1 := strings.Repeat(`{"model":"m","prompt":"caf`+"\xe9"+`"}`+"\n", 50)
	var gz strings.Builder
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Repeat(`{"model":"m","prompt":"p"}`+"\n", 50)))
	zw.Close()
	if err := os.Mkdir(filepath.Join(dir, "folder.jsonl"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, file, want string }{
		{"NotUTF8", writeFile(t, dir, "latin1.jsonl", latin1), "latin1.jsonl:1: not valid UTF-8 (column 27): the file is not UTF-8 text"},
		{"Binary", writeFile(t, dir, "gz.jsonl", gz.String()), "gz.jsonl:1: binary data (NUL byte), not a JSONL file"},
		{"UTF16", writeFile(t, dir, "utf16.jsonl", "\xFF\xFE{\x00}\x00\n\x00"), "utf16.jsonl:1: UTF-16 text, not UTF-8"},
		{"Empty", writeFile(t, dir, "empty.jsonl", ""), "empty.jsonl: no requests (the file is empty)"},
		{"Directory", filepath.Join(dir, "folder.jsonl"), "folder.jsonl: is a directory, not a JSONL file"},
	}
	db := filepath.Join(dir, "t.db")
	for _, tc := range tests {
		for _, args := range [][]string{{"import"}, {"import", "--skip-invalid"}, {"run", "--skip-invalid"}} {
			t.Run(tc.name+"/"+strings.Join(args, ""), func(t *testing.T) {
				res := runCLI(t, keyEnv(), append(append([]string{"--db", db}, args...), tc.file)...)
				if res.Code != exitError {
					t.Errorf("exit %d, want 1", res.Code)
				}
				if strings.Count(res.Stderr, "\n") != 1 || !strings.Contains(res.Stderr, tc.want) {
					t.Errorf("stderr %q, want one line with %q", res.Stderr, tc.want)
				}
			})
		}
	}
	if n := queryInt(t, db, `SELECT count(*) FROM jobs`); n != 0 {
		t.Errorf("%d jobs stored, want none", n)
	}
}
