package main

import (
	"fmt"
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

func TestCostBudget(t *testing.T) {
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	dir := t.TempDir()
	file := writeLines(t, dir, "c.jsonl", chatLines(10)...)
	db := filepath.Join(dir, "c.db")
	// At 1000 USD per million tokens in and out, each request's worst case
	// (10 prompt + 1024 completion tokens) is 1.034 USD: two fit in 3 USD,
	// a third would cross it.
	price := []string{"--price", "deepseek/deepseek-v3=1000:1000", "--currency", "USD"}
	res := runCLI(t, keyEnv(), append(append(runArgs(db, srv, file), price...), "--concurrency", "4", "--max-cost", "3", "-q")...)
	if res.code != exitBudget {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitBudget, res.stderr)
	}
	if !strings.Contains(res.stderr, "budget reached: spent ") || !strings.Contains(res.stderr, " of 3.0000 USD; nothing is lost: raise --max-cost") {
		t.Errorf("stderr:\n%s", res.stderr)
	}
	st := statusJSON(t, db, "c")
	succeeded, pending := count(t, st, "succeeded"), count(t, st, "pending")
	if succeeded < 2 || succeeded > 9 || succeeded+pending != 10 {
		t.Errorf("after the budget stop: %d succeeded, %d pending; want 2 to 9 succeeded and the rest pending", succeeded, pending)
	}
	u := st["usage"].(map[string]any)
	if cost := (u["prompt_tokens"].(float64) + u["completion_tokens"].(float64)) * 1000 / 1e6; cost > 3 {
		t.Errorf("spent %.4f USD of a 3 USD budget (usage %v)", cost, u)
	}

	// The budget counts what earlier runs spent: a budget of what was
	// spent already lets nothing more through.
	spent := (u["prompt_tokens"].(float64) + u["completion_tokens"].(float64)) * 1000 / 1e6
	res = runCLI(t, keyEnv(), append(append(runArgs(db, srv, file), price...), "--max-cost", fmt.Sprint(spent+0.5), "-q")...)
	if res.code != exitBudget || count(t, statusJSON(t, db, "c"), "succeeded") != succeeded {
		t.Errorf("rerun with %.4f USD more than spent: exit %d, want %d and nothing sent\n%s", 0.5, res.code, exitBudget, res.stderr)
	}

	res = runCLI(t, keyEnv(), append(append(runArgs(db, srv, file), price...), "--max-cost", "1000", "-q")...)
	if res.code != 0 {
		t.Fatalf("rerun with a higher budget: exit %d\n%s", res.code, res.stderr)
	}
	if got := count(t, statusJSON(t, db, "c"), "succeeded"); got != 10 {
		t.Errorf("succeeded after the rerun: got %d, want 10", got)
	}
	if s := settled(t, srv); s.Calls != 10 || len(s.DuplicateKeys()) > 0 {
		t.Errorf("fake API: %d calls, duplicates %v; want 10 calls, none twice", s.Calls, s.DuplicateKeys())
	}
}

// A cost budget without the price of a model the job asks for is refused
// before anything is sent.
func TestCostBudgetNeedsPrices(t *testing.T) {
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	dir := t.TempDir()
	file := writeLines(t, dir, "p.jsonl", chatLines(3)...)
	db := filepath.Join(dir, "p.db")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"NoPrices", []string{"--max-cost", "5"}, "--max-cost needs the price of every model"},
		{"OtherModel", []string{"--max-cost", "5", "--price", "other/model=1:2"}, `--max-cost: no price for model "deepseek/deepseek-v3"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := runCLI(t, keyEnv(), append(append(runArgs(db, srv, file), c.args...), "-q")...)
			if res.code != exitError || !strings.Contains(res.stderr, c.want) {
				t.Errorf("exit %d, want %d with %q\n%s", res.code, exitError, c.want, res.stderr)
			}
		})
	}
	if s := settled(t, srv); s.Calls != 0 {
		t.Errorf("fake API: %d calls, want none", s.Calls)
	}
}
