package worker

import (
	"errors"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

func TestBudget(t *testing.T) {
	b := budget{limit: 100, spent: 30} // 30 spent by earlier runs
	if !b.reserve(50) {
		t.Fatal("reserve 50 of the 70 left: refused")
	}
	if b.reserve(21) {
		t.Fatal("reserve 21 with 20 left: allowed")
	}
	ok := jobs.Outcome{Result: &jobs.Result{Usage: jobs.Usage{Known: true, TotalTokens: 12}}}
	b.settle(50, &ok) // the reservation gives way to the 12 used
	if !b.reserve(58) || b.reserve(1) {
		t.Fatalf("after settling: spent %d, reserved %d; want 42 and 58 after reserving the 58 left", b.spent, b.reserved)
	}
	b.settle(58, nil) // handed back unsent: nothing spent
	unknown := jobs.Outcome{Result: &jobs.Result{}}
	b.reserve(10)
	b.settle(10, &unknown) // usage unknown: the worst case counts
	var be *BudgetError
	if err := b.err(); !errors.As(err, &be) || !errors.Is(err, jobs.ErrBudget) || be.Spent != 52 || be.Limit != 100 {
		t.Errorf("err: %v, want a BudgetError with 52 of 100 spent", err)
	}
	if err := (&budget{limit: 100}).err(); err != nil {
		t.Errorf("a budget never reached: err %v", err)
	}
}
