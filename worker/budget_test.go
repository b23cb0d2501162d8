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

func mustReserve(t *testing.T, b *budget, id string) reservation {
	t.Helper()
	r, fit := b.reserve(id, "m", budgetBody)
	if fit != budgetFits {
		t.Fatalf("reserve %s: %v, want it to fit", id, fit)
	}
	return r
}

func TestBudgetTokens(t *testing.T) {
	b := newBudget(Budget{MaxTokens: 250, SpentTokens: 30}) // 30 spent by earlier runs
	r1 := mustReserve(t, b, "req-1")
	if r1.tokens != 100 {
		t.Fatalf("reserved %d tokens, want 100", r1.tokens)
	}
	r2 := mustReserve(t, b, "req-2")
	// 100 more with 20 left beside two in flight: wait for them to settle.
	if _, fit := b.reserve("req-3", "m", budgetBody); fit != budgetWait {
		t.Fatalf("reserve 100 with 20 left and 2 in flight: %v, want budgetWait", fit)
	}
	if err := b.err(); err != nil {
		t.Fatalf("waiting is not reaching the budget: %v", err)
	}
	used := jobs.Outcome{Result: &jobs.Result{Usage: jobs.Usage{Known: true, TotalTokens: 12}}}
	b.settle(r1, "m", &used) // the reservation gives way to the 12 used
	b.settle(r2, "m", nil)   // handed back unsent: nothing spent
	if b.SpentTokens != 42 || b.reserved.tokens != 0 || b.inFlight != 0 {
		t.Fatalf("after settling: spent %d, reserved %d, %d in flight; want 42, 0, 0", b.SpentTokens, b.reserved.tokens, b.inFlight)
	}
	r3 := mustReserve(t, b, "req-3")                         // it fits now: 142 of 250 at worst
	b.settle(r3, "m", &jobs.Outcome{Result: &jobs.Result{}}) // usage unknown: the worst case counts
	r4 := mustReserve(t, b, "req-4")                         // 242 of 250 at worst
	if _, fit := b.reserve("req-5", "m", budgetBody); fit != budgetWait {
		t.Fatalf("with one in flight: %v, want budgetWait", fit)
	}
	b.settle(r4, "m", &jobs.Outcome{Result: &jobs.Result{}})
	// 242 spent, nothing in flight: req-5's 100 can never fit.
	if _, fit := b.reserve("req-5", "m", budgetBody); fit != budgetReached {
		t.Fatalf("with nothing in flight and 8 left: %v, want budgetReached", fit)
	}
	var be *BudgetError
	want := "budget reached: spent 242 of 250 tokens; req-5 may use 100 tokens, 8 left"
	if err := b.err(); !errors.As(err, &be) || !errors.Is(err, jobs.ErrBudget) || be.Flag != "--max-tokens" || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if err := newBudget(Budget{MaxTokens: 100}).err(); err != nil {
		t.Errorf("a budget never reached: err %v", err)
	}
}

func TestBudgetCost(t *testing.T) {
	prices := jobs.Prices{Currency: "USD", ByModel: map[string]jobs.Price{"m": {Input: 1000, Output: 2000}}}
	// Worst case: 10 × 1000 + 90 × 2000 per million tokens = 0.19.
	b := newBudget(Budget{MaxCost: 0.5, SpentCost: 0.1, Prices: prices})
	r1 := mustReserve(t, b, "req-1")
	if r1.cost < 0.1899 || r1.cost > 0.1901 {
		t.Fatalf("reserved %v, want 0.19", r1.cost)
	}
	r2 := mustReserve(t, b, "req-2")
	if _, fit := b.reserve("req-3", "m", budgetBody); fit != budgetWait {
		t.Fatalf("0.19 with 0.02 left and two in flight: %v, want budgetWait", fit)
	}
	// 10 prompt and 40 completion tokens cost 0.09.
	b.settle(r1, "m", &jobs.Outcome{Result: &jobs.Result{Usage: jobs.Usage{Known: true, PromptTokens: 10, CompletionTokens: 40, TotalTokens: 50}}})
	b.settle(r2, "m", nil)
	if b.SpentCost < 0.1899 || b.SpentCost > 0.1901 || b.reserved.cost > 1e-9 || b.SpentTokens != 50 {
		t.Errorf("spent %v (%d tokens), reserved %v; want 0.19 (50 tokens) and nothing reserved", b.SpentCost, b.SpentTokens, b.reserved.cost)
	}
	r3 := mustReserve(t, b, "req-3") // 0.38 of 0.5 at worst
	b.settle(r3, "m", &jobs.Outcome{Result: &jobs.Result{}})
	if _, fit := b.reserve("req-4", "m", budgetBody); fit != budgetReached {
		t.Fatalf("0.19 with 0.12 left and nothing in flight: %v, want budgetReached", fit)
	}
	var be *BudgetError
	want := "budget reached: spent 0.3800 USD of 0.5000 USD; req-4 may cost 0.1900 USD, 0.1200 USD left"
	if err := b.err(); !errors.As(err, &be) || be.Flag != "--max-cost" || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}

	t.Run("NoPrice", func(t *testing.T) {
		b := newBudget(Budget{MaxCost: 1, Prices: prices})
		if _, fit := b.reserve("req-1", "other", budgetBody); fit != budgetReached {
			t.Fatalf("a request of a model without a price: %v, want budgetReached", fit)
		}
		if err := b.err(); err == nil || !strings.Contains(err.Error(), `no price for model "other"`) {
			t.Errorf("err: %v", err)
		}
	})
	t.Run("NoOutputPrice", func(t *testing.T) {
		// MODEL=IN prices an embeddings model; a chat request of that model
		// has output whose cost is unknown, not free.
		_, p, err := jobs.ParsePrice("m=1000")
		if err != nil {
			t.Fatal(err)
		}
		b := newBudget(Budget{MaxCost: 1, Prices: jobs.Prices{ByModel: map[string]jobs.Price{"m": p}}})
		if _, fit := b.reserve("req-1", "m", budgetBody); fit != budgetReached {
			t.Fatalf("a chat request of a model with only an input price: %v, want budgetReached", fit)
		}
		if err := b.err(); err == nil || !strings.Contains(err.Error(), `model "m" has only an input price`) {
			t.Errorf("err: %v", err)
		}
		b = newBudget(Budget{MaxCost: 1, Prices: jobs.Prices{ByModel: map[string]jobs.Price{"m": p}}})
		r, fit := b.reserve("emb-1", "m", []byte(`{"model":"m","input":"123456"}`))
		if fit != budgetFits {
			t.Fatalf("an embeddings request of a model with only an input price: %v, want it to fit", fit)
		}
		if r.cost < 0.00199 || r.cost > 0.00201 {
			t.Errorf("an embeddings request of 2 tokens at 1000 per million reserved %v, want 0.002", r.cost)
		}
	})
	t.Run("NoBudget", func(t *testing.T) {
		b := newBudget(Budget{})
		if r, fit := b.reserve("req-1", "other", budgetBody); fit != budgetFits || r != (reservation{}) {
			t.Errorf("without a budget: %+v, %v; want nothing reserved", r, fit)
		}
	})
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 65540: "65,540", -1234567: "-1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
