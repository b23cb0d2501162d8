package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// With no lead, the cache pass runs beside the run from the first
// request: the run claims some requests before the pass reaches them. Each
// request still gets exactly one result, from the cache or from one call,
// and the count the run prints is what status says was cached.
func TestCachePassBesideTheRun(t *testing.T) {
	const n = 300
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	db := filepath.Join(dir, "c.db")
	a := writeLines(t, dir, "a.jsonl", chatLines(n)...)
	if res := runCLI(t, keyEnv(), append(runArgs(db, srv, a), "-q")...); res.Code != 0 {
		t.Fatalf("run a: exit %d\n%s", res.Code, res.Stderr)
	}
	before := settled(t, srv).Calls
	b := writeLines(t, dir, "b.jsonl", chatLines(n)...) // the same requests, another job
	res := runCLI(t, keyEnv(), append(runArgs(db, srv, b), "--log-interval", "1h", "--concurrency", "4",
		"--cache-lead", "0s", "--cache-chunk", "7")...)
	if res.Code != 0 {
		t.Fatalf("run b: exit %d\n%s", res.Code, res.Stderr)
	}
	answered := 0
	if m := regexp.MustCompile(`job b: (\d+) requests answered from the cache`).FindStringSubmatch(res.Stderr); m != nil {
		answered, _ = strconv.Atoi(m[1])
	}
	calls := int(settled(t, srv).Calls - before)
	st := statusJSON(t, db, "b")
	t.Logf("job b: %d answered from the cache, %d sent", answered, calls)
	if answered+calls != n || st["cached"] != float64(answered) || count(t, st, "succeeded") != n {
		t.Errorf("job b: %d answered from the cache + %d sent, status cached %v and %d succeeded; want %d in all",
			answered, calls, st["cached"], count(t, st, "succeeded"), n)
	}
	if got := queryInt(t, db, `SELECT count(*) FROM results x JOIN requests q ON q.id = x.request_id JOIN jobs j ON j.id = q.job_id WHERE j.name = 'b'`); got != n {
		t.Errorf("job b has %d results, want %d (one each)", got, n)
	}
	if answered == 0 {
		t.Errorf("the pass beside the run answered nothing:\n%s", res.Stderr)
	}
	// The progress line counts what the pass answered beside the run.
	if want := fmt.Sprintf("llmbatch: job b: %d/%d done (100.0%%)", n, n); !strings.Contains(res.Stderr, want) {
		t.Errorf("the last progress line is not %q:\n%s", want, res.Stderr)
	}
}
