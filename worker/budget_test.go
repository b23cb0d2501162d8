package worker

import (
	"errors"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// budgetBody is a request whose worst case is 10 prompt tokens (the 39
// bytes of its messages) and 90 completion tokens.
var budgetBody = []byte(`{"model":"m","messages":[{"role":"user","content":"prompt-0"}],"max_tokens":90}`)

func TestBudgetTokens(t *testing.T) {
	b := newBudget(Budget{MaxTokens: 250, SpentTokens: 30}) // 30 spent by earlier runs
	r1, ok := b.reserve("m", budgetBody)
	if !ok || r1.tokens != 100 {
		t.Fatalf("reserve: %+v, %v; want 100 tokens reserved", r1, ok)
	}
	r2, ok := b.reserve("m", budgetBody)
	if !ok {
		t.Fatal("reserve a second 100 with 120 left: refused")
	}
	if _, ok := b.reserve("m", budgetBody); ok {
		t.Fatal("reserve 100 with 20 left: allowed")
	}
	used := jobs.Outcome{Result: &jobs.Result{Usage: jobs.Usage{Known: true, TotalTokens: 12}}}
	b.settle(r1, "m", &used) // the reservation gives way to the 12 used
	b.settle(r2, "m", nil)   // handed back unsent: nothing spent
	if b.SpentTokens != 42 || b.reserved.tokens != 0 {
		t.Fatalf("after settling: spent %d, reserved %d; want 42 and 0", b.SpentTokens, b.reserved.tokens)
	}
	r3, _ := b.reserve("m", budgetBody)
	b.settle(r3, "m", &jobs.Outcome{Result: &jobs.Result{}}) // usage unknown: the worst case counts
	var be *BudgetError
	if err := b.err(); !errors.As(err, &be) || !errors.Is(err, jobs.ErrBudget) || be.Spent != 142 || be.Limit != 250 ||
		be.Flag != "--max-tokens" || be.Error() != "budget reached: spent 142 of 250 tokens" {
		t.Errorf("err: %v, want a BudgetError of --max-tokens with 142 of 250 spent", err)
	}
	if err := newBudget(Budget{MaxTokens: 100}).err(); err != nil {
		t.Errorf("a budget never reached: err %v", err)
	}
}

func TestBudgetCost(t *testing.T) {
	prices := jobs.Prices{Currency: "USD", ByModel: map[string]jobs.Price{"m": {Input: 1000, Output: 2000}}}
	// Worst case: 10 × 1000 + 90 × 2000 per million tokens = 0.19.
	b := newBudget(Budget{MaxCost: 0.5, SpentCost: 0.1, Prices: prices})
	r1, ok := b.reserve("m", budgetBody)
	if !ok || r1.cost < 0.1899 || r1.cost > 0.1901 {
		t.Fatalf("reserve: %+v, %v; want 0.19 reserved", r1, ok)
	}
	r2, ok := b.reserve("m", budgetBody)
	if !ok {
		t.Fatal("a second 0.19 with 0.21 left: refused")
	}
	if _, ok := b.reserve("m", budgetBody); ok {
		t.Fatal("0.19 with 0.02 left: allowed")
	}
	// 10 prompt and 40 completion tokens cost 0.09.
	b.settle(r1, "m", &jobs.Outcome{Result: &jobs.Result{Usage: jobs.Usage{Known: true, PromptTokens: 10, CompletionTokens: 40, TotalTokens: 50}}})
	b.settle(r2, "m", nil)
	if b.SpentCost < 0.1899 || b.SpentCost > 0.1901 || b.reserved.cost > 1e-9 || b.SpentTokens != 50 {
		t.Errorf("spent %v (%d tokens), reserved %v; want 0.19 (50 tokens) and nothing reserved", b.SpentCost, b.SpentTokens, b.reserved.cost)
	}
	var be *BudgetError
	if err := b.err(); !errors.As(err, &be) || be.Flag != "--max-cost" || be.Error() != "budget reached: spent 0.1900 USD of 0.5000 USD" {
		t.Errorf("err: %v, want the --max-cost budget reached with 0.1900 USD of 0.5000 USD", err)
	}

	t.Run("NoPrice", func(t *testing.T) {
		b := newBudget(Budget{MaxCost: 1, Prices: prices})
		if _, ok := b.reserve("other", budgetBody); ok {
			t.Fatal("a request of a model without a price was let through a cost budget")
		}
		if err := b.err(); err == nil || !strings.Contains(err.Error(), `no price for model "other"`) {
			t.Errorf("err: %v", err)
		}
	})
	t.Run("NoBudget", func(t *testing.T) {
		b := newBudget(Budget{})
		if r, ok := b.reserve("other", budgetBody); !ok || r != (reservation{}) {
			t.Errorf("without a budget: %+v, %v; want nothing reserved", r, ok)
		}
	})
}
