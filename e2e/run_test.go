package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store"
)

func runArgs(db string, srv *fakeapi.Server, extra ...string) []string {
	return append([]string{"--db", db, "run", "--base-url", srv.URL(), "--retry-delay", "10ms",
		"--max-retry-delay", "50ms"}, extra...)
}

func TestRunBothFormatsAndEndpoints(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "mixed.jsonl",
		map[string]any{"custom_id": "batch-chat", "method": "POST", "url": "/v1/chat/completions", "metadata": map[string]any{"k": "v1"},
			"body": map[string]any{"model": "m1", "messages": []any{map[string]any{"role": "user", "content": "prompt-a"}}}},
		map[string]any{"custom_id": "batch-cmpl", "url": "/v1/completions", "body": map[string]any{"model": "m1", "prompt": "prompt-b"}},
		map[string]any{"custom_id": "bare-chat", "metadata": map[string]any{"n": 3, "tags": []any{"x"}}, "model": "m2",
			"messages": []any{map[string]any{"role": "user", "content": "prompt-c"}}},
		`{"prompt": "prompt-d"}`,
	)
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, keyEnv(), runArgs(db, srv, "--model", "default-model", file)...)
	if res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := runCLI(t, keyEnv(), runArgs(db, srv, file)...); res.Code != 0 {
		t.Fatalf("rerun without --model must continue the job: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--model", "other", file)...); res.Code != exitError {
		t.Fatalf("rerun with another --model: exit %d, want 1\n%s", res.Code, res.Stderr)
	}
	lines := exportJSONL(t, db, "mixed", "openai")
	wantIDs := []string{"batch-chat", "batch-cmpl", "bare-chat", "line-4"}
	wantContent := []string{"echo: prompt-a", "echo: prompt-b", "echo: prompt-c", "echo: prompt-d"}
	if len(lines) != len(wantIDs) {
		t.Fatalf("got %d export lines, want %d", len(lines), len(wantIDs))
	}
	for i, l := range lines {
		if l["custom_id"] != wantIDs[i] {
			t.Errorf("line %d: custom_id %v, want %s", i, l["custom_id"], wantIDs[i])
		}
		resp := l["response"].(map[string]any)
		body := resp["body"].(map[string]any)
		choice := body["choices"].([]any)[0].(map[string]any)
		got, _ := choice["text"].(string)
		if m, ok := choice["message"].(map[string]any); ok {
			got = m["content"].(string)
		}
		if got != wantContent[i] || resp["status_code"] != 200.0 || l["error"] != nil {
			t.Errorf("line %d: content %q status %v error %v", i, got, resp["status_code"], l["error"])
		}
	}
	if got := fmt.Sprint(lines[0]["metadata"]); got != "map[k:v1]" {
		t.Errorf("openai metadata = %s", got)
	}
	if lines[3]["response"].(map[string]any)["body"].(map[string]any)["model"] != "default-model" {
		t.Errorf("the default model was not sent for a line without one")
	}
	flat := exportJSONL(t, db, "mixed", "flat")
	if got := fmt.Sprint(flat[2]["metadata"]); got != "map[n:3 tags:[x]]" {
		t.Errorf("flat metadata = %s", got)
	}
	if flat[2]["content"] != "echo: prompt-c" || flat[2]["status"] != "succeeded" {
		t.Errorf("flat line = %v", flat[2])
	}
	for _, b := range srv.Bodies() {
		if strings.Contains(string(b), "custom_id") || strings.Contains(string(b), "metadata") {
			t.Errorf("custom_id or metadata was sent: %s", b)
		}
	}
}

func TestRunErrorsAndRetries(t *testing.T) {
	dir := t.TempDir()
	script := func(c fakeapi.Call) fakeapi.Fault {
		switch {
		case c.CustomKey == "prompt-0":
			return fakeapi.Fault{Status: 400, Body: `{"error":{"message":"bad max_tokens","type":"invalid_request_error"}}`}
		case c.Attempt > 1:
			return fakeapi.Fault{}
		case c.CustomKey == "prompt-1":
			return fakeapi.Fault{Status: 429, Header: map[string]string{"Retry-After": "1"}}
		case c.CustomKey == "prompt-2":
			return fakeapi.Fault{Status: 500}
		case c.CustomKey == "prompt-3":
			return fakeapi.Fault{Status: 503}
		case c.CustomKey == "prompt-4":
			return fakeapi.Fault{Reset: true}
		case c.CustomKey == "prompt-5":
			return fakeapi.Fault{BadJSON: true}
		}
		return fakeapi.Fault{}
	}
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: script})
	file := writeLines(t, dir, "faults.jsonl", chatLines(8)...)
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, keyEnv(), runArgs(db, srv, file)...)
	if res.Code != exitSomeFailed {
		t.Fatalf("run: exit %d, want %d\n%s", res.Code, exitSomeFailed, res.Stderr)
	}
	st := statusJSON(t, db, "faults")
	if count(t, st, "succeeded") != 7 || count(t, st, "failed") != 1 {
		t.Fatalf("counts = %v", st["counts"])
	}
	errs := exportJSONL(t, db, "faults", "openai")
	// A failure with an HTTP answer is that answer, with a null error, as
	// in OpenAI's Batch output.
	bad := errs[0]
	resp, _ := bad["response"].(map[string]any)
	if bad["custom_id"] != "req-0" || bad["error"] != nil || resp == nil || resp["status_code"] != 400.0 {
		t.Fatalf("failed line = %v", bad)
	}
	if got := resp["body"].(map[string]any)["error"].(map[string]any)["message"]; got != "bad max_tokens" {
		t.Errorf("provider error body not kept: %v", got)
	}
	classes := map[string]bool{}
	for _, e := range st["errors"].([]any) {
		classes[e.(map[string]any)["class"].(string)] = true
	}
	for _, want := range []string{"rate_limited", "server_error", "network", "bad_response", "invalid_request"} {
		if !classes[want] {
			t.Errorf("status errors lack class %s: %v", want, st["errors"])
		}
	}
	if s := settled(t, srv); s.Served != 7 || len(s.DuplicateKeys()) != 0 {
		t.Errorf("served %d (duplicates %v), want 7", s.Served, s.DuplicateKeys())
	}
}

func TestRunFatalAuthStopsAndResumes(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "auth.jsonl", chatLines(50)...)
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, map[string]string{"OPENAI_API_KEY": "sk-wrong"}, runArgs(db, srv, "--concurrency", "4", file)...)
	if res.Code != exitFatalAPI {
		t.Fatalf("run with a bad key: exit %d, want %d\n%s", res.Code, exitFatalAPI, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "check the API key") {
		t.Errorf("message does not say what to fix: %s", res.Stderr)
	}
	st := statusJSON(t, db, "auth")
	if count(t, st, "failed") != 0 || count(t, st, "pending") != 50 {
		t.Fatalf("after 401: counts = %v", st["counts"])
	}
	if calls := settled(t, srv).Calls; calls > 8 {
		t.Errorf("the run went on after the 401: %d calls", calls)
	}
	res = runCLI(t, keyEnv(), runArgs(db, srv, file)...)
	if res.Code != 0 {
		t.Fatalf("rerun: exit %d\n%s", res.Code, res.Stderr)
	}
	if n := len(exportJSONL(t, db, "auth", "flat")); n != 50 {
		t.Errorf("exported %d, want 50", n)
	}
}

func TestRunMaxAttemptsThenRetry(t *testing.T) {
	dir := t.TempDir()
	// prompt-0 gets a 502 until broken ends; the other requests are
	// answered, so this is one request's failure, not an outage.
	var broken atomic.Bool
	broken.Store(true)
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
		if broken.Load() && c.CustomKey == "prompt-0" {
			return fakeapi.Fault{Status: 502, Body: "bad gateway"}
		}
		return fakeapi.Fault{}
	}})
	file := writeLines(t, dir, "flaky.jsonl", chatLines(3)...)
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, keyEnv(), runArgs(db, srv, "--max-attempts", "3", "--retry-delay", "10ms", file)...)
	if res.Code != exitSomeFailed {
		t.Fatalf("exit %d, want %d\n%s", res.Code, exitSomeFailed, res.Stderr)
	}
	if calls := settled(t, srv).Calls; calls != 3+2 {
		t.Errorf("calls = %d, want 3 attempts of the broken request and 2 answers", calls)
	}
	flat := exportJSONL(t, db, "flaky", "flat")
	e := flat[0]["error"].(map[string]any)
	if e["code"] != "server_error" || e["status_code"] != 502.0 || e["message"] != "bad gateway" {
		t.Errorf("last error not kept: %v", e)
	}
	broken.Store(false)
	if res := runCLI(t, nil, "--db", db, "retry", "flaky"); res.Code != 0 || !strings.Contains(res.Stdout, "1 request back") {
		t.Fatalf("retry: %+v", res)
	}
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "flaky")...); res.Code != 0 {
		t.Fatalf("run after retry: exit %d\n%s", res.Code, res.Stderr)
	}
}

func TestRunImportsOnceAndRefusesChangedFile(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "p.jsonl", chatLines(5)...)
	db := filepath.Join(dir, "t.db")
	for i := 0; i < 2; i++ {
		if res := runCLI(t, keyEnv(), runArgs(db, srv, file)...); res.Code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i, res.Code, res.Stderr)
		}
	}
	if s := settled(t, srv); s.Served != 5 {
		t.Errorf("served %d, want 5: the second run must not send again", s.Served)
	}
	if res := runCLI(t, nil, "--db", db, "jobs"); strings.Count(res.Stdout, "\np ") != 1 {
		t.Errorf("jobs:\n%s", res.Stdout)
	}
	writeLines(t, dir, "p.jsonl", chatLines(6)...)
	res := runCLI(t, keyEnv(), runArgs(db, srv, file)...)
	if res.Code != exitError || !strings.Contains(res.Stderr, "--job NEWNAME") {
		t.Fatalf("changed file: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--job", "p2", file)...); res.Code != 0 {
		t.Fatalf("new job name: exit %d\n%s", res.Code, res.Stderr)
	}
}

func TestRunBadInputSendsNothing(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "bad.jsonl", chatLine(0), `{"model": "m", "messages": [}`, `[1, 2]`, chatLine(3), chatLine(3))
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, keyEnv(), runArgs(db, srv, file)...)
	if res.Code != exitError {
		t.Fatalf("exit %d, want 1\n%s", res.Code, res.Stderr)
	}
	for _, want := range []string{file + ":2: invalid JSON", file + ":3: "} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.Stderr)
		}
	}
	if calls := settled(t, srv).Calls; calls != 0 {
		t.Errorf("%d requests sent for an invalid file", calls)
	}
	if res := runCLI(t, nil, "--db", db, "jobs"); strings.Contains(res.Stdout, "bad") {
		t.Errorf("an invalid file left a job:\n%s", res.Stdout)
	}
}

func TestRunRefusesLockedJob(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "locked.jsonl", chatLines(2)...)
	db := filepath.Join(dir, "t.db")
	if res := runCLI(t, nil, "--db", db, "import", file); res.Code != 0 {
		t.Fatalf("import: %+v", res)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	job, err := st.Job(ctx, "locked")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	// This test's own process is alive, so the lock must hold.
	if err := st.Lock(ctx, job.ID, jobs.LockOwner{Token: "other", PID: os.Getpid(), Host: host}, 30*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	res := runCLI(t, keyEnv(), runArgs(db, srv, file)...)
	if res.Code != exitError || !strings.Contains(res.Stderr, fmt.Sprintf("pid %d on %s", os.Getpid(), host)) {
		t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
	}
	if calls := settled(t, srv).Calls; calls != 0 {
		t.Errorf("a refused run sent %d requests", calls)
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "c.jsonl", chatLines(4)...)
	db := filepath.Join(dir, "t.db")
	runCLI(t, nil, "--db", db, "import", file)
	if res := runCLI(t, nil, "--db", db, "cancel", "c"); res.Code != 0 || !strings.Contains(res.Stdout, "4 requests cancelled") {
		t.Fatalf("cancel: %+v", res)
	}
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "c")...); res.Code != exitError || !strings.Contains(res.Stderr, "cancelled") {
		t.Fatalf("run of a cancelled job: %+v", res)
	}
	lines := exportJSONL(t, db, "c", "openai")
	if len(lines) != 4 || lines[0]["error"].(map[string]any)["code"] != "cancelled" {
		t.Errorf("export of a cancelled job: %v", lines)
	}
}
