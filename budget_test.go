package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

func TestTokenBudget(t *testing.T) {
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	dir := t.TempDir()
	file := writeLines(t, dir, "b.jsonl", chatLines(10)...)
	db := filepath.Join(dir, "b.db")
	// Each request's worst case is 10 prompt tokens ([{"content":"prompt-0",
	// "role":"user"}] is 39 bytes) + 1024 completion = 1034: with 4 claimed
	// at once, two fit in 3000 and the third would cross it.
	res := runCLI(t, keyEnv(), append(runArgs(db, srv, file), "--concurrency", "4", "--max-tokens", "3000", "-q")...)
	if res.code != exitBudget {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitBudget, res.stderr)
	}
	if !strings.Contains(res.stderr, "budget reached: spent ") || !strings.Contains(res.stderr, " of 3000 tokens; nothing is lost: raise --max-tokens") {
		t.Errorf("stderr:\n%s", res.stderr)
	}
	st := statusJSON(t, db, "b")
	if got, want := count(t, st, "succeeded"), 2; got != want {
		t.Errorf("succeeded after the budget stop: got %d, want %d", got, want)
	}
	if got, want := count(t, st, "pending"), 8; got != want {
		t.Errorf("pending after the budget stop: got %d, want %d", got, want)
	}
	if got := count(t, st, "running") + count(t, st, "failed"); got != 0 {
		t.Errorf("running or failed after the budget stop: %d", got)
	}

	res = runCLI(t, keyEnv(), append(runArgs(db, srv, file), "--concurrency", "4", "--max-tokens", "1000000", "-q")...)
	if res.code != 0 {
		t.Fatalf("rerun with a higher budget: exit %d\n%s", res.code, res.stderr)
	}
	if got := count(t, statusJSON(t, db, "b"), "succeeded"); got != 10 {
		t.Errorf("succeeded after the rerun: got %d, want 10", got)
	}
	if s := settled(t, srv); s.Calls != 10 || len(s.DuplicateKeys()) > 0 {
		t.Errorf("fake API: %d calls, duplicates %v; want 10 calls, none twice", s.Calls, s.DuplicateKeys())
	}
}
