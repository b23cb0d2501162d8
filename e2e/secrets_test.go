package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/store"
)

// leakedKeyBody is a provider error that repeats the key it was sent, as
// some providers do on a 400.
var leakedKeyBody = `{"error":{"message":"Incorrect API key provided: ` + testKey +
	`","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`

// keyLeakScript answers prompt-i by i mod 3: a permanent 400 that repeats
// the key; a retryable 500 that repeats it, then a normal answer; a normal
// answer.
func keyLeakScript(c fakeapi.Call) fakeapi.Fault {
	var i int
	if _, err := fmt.Sscanf(c.CustomKey, "prompt-%d", &i); err != nil {
		return fakeapi.Fault{Status: 500, Body: leakedKeyBody}
	}
	switch {
	case i%3 == 0:
		return fakeapi.Fault{Status: 400, Body: leakedKeyBody}
	case i%3 == 1 && c.Attempt == 1:
		return fakeapi.Fault{Status: 500, Body: leakedKeyBody}
	}
	return fakeapi.Fault{}
}

// TestAPIKeyNeverLeaks runs jobs whose provider echoes the key in error
// bodies, then looks for the key's bytes everywhere the CLI writes.
func TestAPIKeyNeverLeaks(t *testing.T) {
	t.Run("ErrorBodiesEchoKey", testErrorBodiesEchoKey)
	t.Run("KeyFile", testKeyFile)
}

// testErrorBodiesEchoKey searches every file of the database directory
// (the database and, kept by an open connection, its -wal and -shm), the
// exports, and the output of every command.
func testErrorBodiesEchoKey(t *testing.T) {
	const n = 30
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: keyLeakScript})
	file := writeLines(t, dir, "leak.jsonl", chatLines(n)...)
	db := filepath.Join(dir, "leak.db")
	env := binEnv(dir)
	var procs []*proc
	start := func(args ...string) *proc {
		p := startBinary(t, dir, env, append([]string{"--db", db}, args...)...)
		procs = append(procs, p)
		return p
	}
	start("import", file).expect(0, time.Minute)
	// While this connection is open, the run's last close cannot checkpoint
	// and delete the -wal file, so its raw frames are searched too.
	ctx := context.Background()
	held, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.Job(ctx, "leak"); err != nil {
		t.Fatal(err)
	}
	start("run", "--base-url", srv.URL(), "--retry-delay", "10ms", "--max-retry-delay", "50ms", "leak").expect(exitSomeFailed, time.Minute)
	openai, openaiErrs := filepath.Join(dir, "openai.jsonl"), filepath.Join(dir, "openai-errors.jsonl")
	flat, flatErrs := filepath.Join(dir, "flat.jsonl"), filepath.Join(dir, "flat-errors.jsonl")
	// The readers run at once: a binary built with -race is slow to start.
	readers := []*proc{
		start("export", "-o", openai, "--errors", openaiErrs, "leak"),
		start("export", "--format", "flat", "-o", flat, "--errors", flatErrs, "leak"),
		start("export", "leak"),
		start("status", "leak"),
		start("status", "--json", "leak"),
		start("jobs"),
	}
	for _, p := range readers {
		p.expect(0, time.Minute)
	}
	status := readers[3]

	// The test could not fail if the provider's errors were not kept.
	failed := n / 3
	for _, path := range []string{openaiErrs, flatErrs} {
		b := mustRead(t, path)
		if got := bytes.Count(b, []byte("\n")); got != failed {
			t.Errorf("%s: %d lines, want %d", path, got, failed)
		}
		if !bytes.Contains(b, []byte("Incorrect API key provided")) {
			t.Errorf("%s does not keep the provider's error message:\n%s", path, b)
		}
	}
	if !strings.Contains(status.stdout.String(), "server_error") {
		t.Errorf("status shows no server_error class:\n%s", status.stdout.String())
	}
	if _, err := os.Stat(db + "-wal"); err != nil {
		t.Errorf("no -wal file to search: %v", err)
	}
	for _, p := range procs {
		checkNoKey(t, p.name+": stdout", []byte(p.stdout.String()))
		checkNoKey(t, p.name+": stderr", []byte(p.stderr.String()))
	}
	checkDirNoKey(t, dir)
	for _, path := range []string{db, db + "-wal", db + "-shm", openai, openaiErrs, flat, flatErrs} {
		checkMode(t, path)
	}
}

// testKeyFile runs with the key read from a 0600 file, and a wrong key in
// the environment that the file must override.
func testKeyFile(t *testing.T) {
	const n = 5
	dir, keyDir := t.TempDir(), t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: keyLeakScript})
	file := writeLines(t, dir, "keyfile.jsonl", chatLines(n)...)
	db := filepath.Join(dir, "keyfile.db")
	keyFile := filepath.Join(keyDir, "key")
	if err := os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, dir, binEnv(dir, "OPENAI_API_KEY=sk-wrong-env-key"), "--db", db, "run", "--base-url", srv.URL(),
		"--api-key-file", keyFile, "--retry-delay", "10ms", "--max-retry-delay", "50ms", file)
	p.expect(exitSomeFailed, time.Minute)
	st := statusJSON(t, db, "keyfile")
	if got, want := count(t, st, "succeeded"), n-(n+2)/3; got != want {
		t.Errorf("%d succeeded, want %d", got, want)
	}
	if got := srv.Stats().Status[401]; got != 0 {
		t.Errorf("%d calls got a 401: the key file was not used", got)
	}
	checkNoKey(t, "stdout", []byte(p.stdout.String()))
	checkNoKey(t, "stderr", []byte(p.stderr.String()))
	checkDirNoKey(t, dir)
	checkMode(t, db)
}

// checkNoKey fails the test if b holds the key, or its distinctive middle
// (a partly masked key still leaks).
func checkNoKey(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, s := range []string{testKey, strings.TrimSuffix(strings.TrimPrefix(testKey, "sk-test-"), "-secret")} {
		if i := bytes.Index(b, []byte(s)); i >= 0 {
			lo, hi := max(0, i-80), min(len(b), i+len(s)+80)
			t.Errorf("%s holds the API key: …%q…", what, b[lo:hi])
			return
		}
	}
}

// checkDirNoKey reads the raw bytes of every file under dir.
func checkDirNoKey(t *testing.T, dir string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		checkNoKey(t, path, mustRead(t, path))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("searched %d files in %s", files, dir)
}

func checkMode(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if m := info.Mode().Perm(); m != 0o600 {
		t.Errorf("%s: mode %#o, want 0600", path, m)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
