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
	// "role":"user"}] is 39 bytes) + 1024 completion = 1034: two reservations
	// fit in 3000 and a third would cross it. How many requests pass before
	// the stop depends on how soon the first answers settle their
	// reservations, so the test asserts bounds, not an exact count.
	res := runCLI(t, keyEnv(), append(runArgs(db, srv, file), "--concurrency", "4", "--max-tokens", "3000", "-q")...)
	if res.code != exitBudget {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitBudget, res.stderr)
	}
	if !strings.Contains(res.stderr, "budget reached: spent ") || !strings.Contains(res.stderr, " of 3000 tokens; nothing is lost: raise --max-tokens") {
		t.Errorf("stderr:\n%s", res.stderr)
	}
	st := statusJSON(t, db, "b")
	succeeded, pending := count(t, st, "succeeded"), count(t, st, "pending")
	if succeeded < 2 || succeeded > 9 || succeeded+pending != 10 {
		t.Errorf("after the budget stop: %d succeeded, %d pending; want 2 to 9 succeeded and the rest pending", succeeded, pending)
	}
	if used := st["usage"].(map[string]any)["total_tokens"].(float64); used > 3000 {
		t.Errorf("spent %v tokens of a 3000-token budget", used)
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
