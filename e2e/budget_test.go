package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// budgetLines are n chat requests with max_tokens set: each one's worst
// case is 10 prompt tokens (its 39-byte messages) + maxTokens, and the fake
// answers it with 6 tokens (4 prompt, 2 completion).
func budgetLines(n, maxTokens int, model string) []any {
	lines := chatLines(n)
	for _, l := range lines {
		l.(map[string]any)["max_tokens"] = maxTokens
		l.(map[string]any)["model"] = model
	}
	return lines
}

// TestTokenBudgetReachesItsLimit: when the job's real usage exceeds the
// budget and one request's worst case is small beside it, the run spends
// at least 90 % of the budget before it stops with exit 5; a rerun with a
// larger budget finishes the job, nothing asked twice.
func TestTokenBudgetReachesItsLimit(t *testing.T) {
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	dir := t.TempDir()
	file := writeLines(t, dir, "b.jsonl", budgetLines(600, 20, "deepseek/deepseek-v3")...)
	db := filepath.Join(dir, "b.db")
	// 600 × 6 = 3,600 tokens really used; a worst case is 30.
	res := runCLI(t, keyEnv(), append(runArgs(db, srv, file), "--max-tokens", "3000", "-q")...)
	if res.Code != exitBudget {
		t.Fatalf("exit %d, want %d\n%s", res.Code, exitBudget, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "budget reached: spent ") || !strings.Contains(res.Stderr, " may use 30 tokens, ") ||
		!strings.Contains(res.Stderr, "nothing is lost: raise --max-tokens") {
		t.Errorf("stderr does not say what was spent, which request did not fit and what to do:\n%s", res.Stderr)
	}
	st := statusJSON(t, db, "b")
	used := st["usage"].(map[string]any)["total_tokens"].(float64)
	if used > 3000 || used < 2700 {
		t.Errorf("spent %v tokens of a 3000-token budget, want between 90 %% and 100 %%", used)
	}
	succeeded, pending := count(t, st, "succeeded"), count(t, st, "pending")
	if succeeded+pending != 600 || count(t, st, "failed")+count(t, st, "running") != 0 {
		t.Errorf("after the budget stop: %d succeeded, %d pending of 600, want the rest pending", succeeded, pending)
	}
	// The budget is the job's: a resume as the hint prints it keeps it.
	m := regexp.MustCompile("run `llmbatch (?:--db \\S+ )?run (\\S+)` again to continue").FindStringSubmatch(res.Stderr)
	if m == nil {
		t.Fatalf("no resume hint:\n%s", res.Stderr)
	}
	before := settled(t, srv).Calls
	res = runCLI(t, keyEnv(), runArgs(db, srv, "-q", m[1])...)
	if res.Code != exitBudget || settled(t, srv).Calls != before {
		t.Errorf("a resume without --max-tokens: exit %d and %d more calls, want %d and none (the stored budget)\n%s",
			res.Code, settled(t, srv).Calls-before, exitBudget, res.Stderr)
	}
	res = runCLI(t, keyEnv(), append(runArgs(db, srv, file), "--max-tokens", "1000000", "-q")...)
	if res.Code != 0 {
		t.Fatalf("rerun with a higher budget: exit %d\n%s", res.Code, res.Stderr)
	}
	if got := count(t, statusJSON(t, db, "b"), "succeeded"); got != 600 {
		t.Errorf("succeeded after the rerun: got %d, want 600", got)
	}
	if s := settled(t, srv); s.Calls != 600 || len(s.DuplicateKeys()) > 0 {
		t.Errorf("fake API: %d calls, duplicates %v; want 600 calls, none twice", s.Calls, s.DuplicateKeys())
	}
}

// TestBudgetFinishesWhenUsageFits is the overnight case: requests whose
// worst case is large (max_tokens 32768) but whose answers are short. The
// budget holds only a dozen worst cases at once; the run waits for the
// reservations in flight to settle, and finishes the job.
func TestBudgetFinishesWhenUsageFits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		budget []string
	}{
		{"Cost", []string{"--max-cost", "1", "--price", "deepseek/deepseek-r1=0.55:2.19"}},
		{"Tokens", []string{"--max-tokens", "200000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
			dir := t.TempDir()
			file := writeLines(t, dir, "r1.jsonl", budgetLines(300, 32768, "deepseek/deepseek-r1")...)
			db := filepath.Join(dir, "r1.db")
			res := runCLI(t, keyEnv(), append(append(runArgs(db, srv, file), tc.budget...), "-q")...)
			if res.Code != 0 {
				t.Fatalf("exit %d, want 0\n%s", res.Code, res.Stderr)
			}
			if got := count(t, statusJSON(t, db, "r1"), "succeeded"); got != 300 {
				t.Errorf("%d succeeded, want 300", got)
			}
		})
	}
}

// TestBudgetNamesARequestTooLarge: a request whose worst case alone is
// more than the budget has left is named, with its worst case and what is
// left.
func TestBudgetNamesARequestTooLarge(t *testing.T) {
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	dir := t.TempDir()
	lines := budgetLines(20, 20, "deepseek/deepseek-v3")
	lines[17].(map[string]any)["max_tokens"] = 65530
	file := writeLines(t, dir, "big.jsonl", lines...)
	db := filepath.Join(dir, "big.db")
	res := runCLI(t, keyEnv(), append(runArgs(db, srv, file), "--max-tokens", "20000", "--concurrency", "1", "-q")...)
	if res.Code != exitBudget {
		t.Fatalf("exit %d, want %d\n%s", res.Code, exitBudget, res.Stderr)
	}
	// 17 requests of 6 tokens were answered before req-17.
	if want := "spent 102 of 20,000 tokens; req-17 may use 65,540 tokens, 19,898 left"; !strings.Contains(res.Stderr, want) {
		t.Errorf("stderr does not say %q:\n%s", want, res.Stderr)
	}
}

func TestCostBudget(t *testing.T) {
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	dir := t.TempDir()
	file := writeLines(t, dir, "c.jsonl", budgetLines(300, 20, "deepseek/deepseek-v3")...)
	db := filepath.Join(dir, "c.db")
	// At 1000 USD per million tokens in and out, a request's worst case (10
	// prompt + 20 completion tokens) is 0.03 USD, and its answer costs
	// 0.006: 300 cost 1.8 USD.
	price := []string{"--price", "deepseek/deepseek-v3=1000:1000", "--currency", "USD"}
	res := runCLI(t, keyEnv(), append(append(runArgs(db, srv, file), price...), "--max-cost", "1", "-q")...)
	if res.Code != exitBudget {
		t.Fatalf("exit %d, want %d\n%s", res.Code, exitBudget, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "budget reached: spent ") || !strings.Contains(res.Stderr, " of 1.0000 USD; req-") ||
		!strings.Contains(res.Stderr, "nothing is lost: raise --max-cost") {
		t.Errorf("stderr:\n%s", res.Stderr)
	}
	st := statusJSON(t, db, "c")
	u := st["usage"].(map[string]any)
	spent := (u["prompt_tokens"].(float64) + u["completion_tokens"].(float64)) * 1000 / 1e6
	if spent > 1 || spent < 0.9 {
		t.Errorf("spent %.4f USD of a 1 USD budget, want 90 %% to 100 %% of it (usage %v)", spent, u)
	}
	succeeded := count(t, st, "succeeded")

	// The budget counts what earlier runs spent, and the prices stored
	// with the job: a rerun with no more room sends nothing.
	res = runCLI(t, keyEnv(), append(runArgs(db, srv, "c"), "--max-cost", fmt.Sprint(spent+0.001), "-q")...)
	if res.Code != exitBudget || count(t, statusJSON(t, db, "c"), "succeeded") != succeeded {
		t.Errorf("rerun with no room left: exit %d, want %d and nothing sent\n%s", res.Code, exitBudget, res.Stderr)
	}
	res = runCLI(t, keyEnv(), append(runArgs(db, srv, "c"), "--max-cost", "1000", "-q")...)
	if res.Code != 0 {
		t.Fatalf("rerun with a higher budget: exit %d\n%s", res.Code, res.Stderr)
	}
	if got := count(t, statusJSON(t, db, "c"), "succeeded"); got != 300 {
		t.Errorf("succeeded after the rerun: got %d, want 300", got)
	}
	if s := settled(t, srv); s.Calls != 300 || len(s.DuplicateKeys()) > 0 {
		t.Errorf("fake API: %d calls, duplicates %v; want 300 calls, none twice", s.Calls, s.DuplicateKeys())
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
			if res.Code != exitError || !strings.Contains(res.Stderr, c.want) {
				t.Errorf("exit %d, want %d with %q\n%s", res.Code, exitError, c.want, res.Stderr)
			}
		})
	}
	if s := settled(t, srv); s.Calls != 0 {
		t.Errorf("fake API: %d calls, want none", s.Calls)
	}
}
