package worker

import (
	"fmt"
	"sync"

	"github.com/llmbatch/llmbatch/jobs"
)

// BudgetError ends a run that stopped claiming because the next request's
// worst case would have crossed Options.MaxTokens. It matches
// jobs.ErrBudget.
type BudgetError struct {
	// Spent is the tokens used, before this run and in it; Limit is
	// Options.MaxTokens.
	Spent, Limit int64
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("budget reached: spent %d of %d tokens", e.Spent, e.Limit)
}

func (e *BudgetError) Unwrap() error { return jobs.ErrBudget }

// budget keeps a run within a token budget: each request reserves its
// worst case (EstimateTokens) before it is sent, and gives the
// reservation back for the usage reported once its attempt ends.
type budget struct {
	mu       sync.Mutex
	limit    int64 // 0: no budget
	spent    int64
	reserved int64
	reached  bool
}

// reserve reserves cost tokens, or reports false, and marks the budget
// reached, when that would cross the limit.
func (b *budget) reserve(cost int64) bool {
	if b.limit <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.spent+b.reserved+cost > b.limit {
		b.reached = true
		return false
	}
	b.reserved += cost
	return true
}

// settle ends a reservation of cost with the outcome o of its attempt (nil
// when the request was handed back unsent). A success whose usage is
// unknown spends its whole reservation, which errs on the safe side.
func (b *budget) settle(cost int64, o *jobs.Outcome) {
	if b.limit <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserved -= cost
	switch {
	case o == nil || o.Result == nil:
	case o.Result.Usage.Known:
		b.spent += o.Result.Usage.TotalTokens
	default:
		b.spent += cost
	}
}

// err returns the run's *BudgetError once the budget was reached.
func (b *budget) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.reached {
		return nil
	}
	return &BudgetError{Spent: b.spent, Limit: b.limit}
}
