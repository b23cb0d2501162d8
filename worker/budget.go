package worker

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/llmbatch/llmbatch/jobs"
)

// BudgetError ends a run that stopped claiming because the next request's
// worst case would have crossed Options.MaxTokens or Options.MaxCost. It
// matches jobs.ErrBudget.
type BudgetError struct {
	// Flag is the budget that was reached: "--max-tokens" or "--max-cost".
	Flag string
	// Spent and Limit are tokens for --max-tokens (Spent counts this run and
	// the ones before it).
	Spent, Limit int64
	// SpentCost and LimitCost are amounts for --max-cost, in Currency.
	SpentCost, LimitCost float64
	Currency             string
	// NoPrice, when not empty, is a model the request that stopped the run
	// asked for and --max-cost has no price of.
	NoPrice string
}

func (e *BudgetError) Error() string {
	switch {
	case e.NoPrice != "":
		return fmt.Sprintf("budget: no price for model %q, so the cost of its requests cannot be kept within --max-cost (give one with --price or --prices)", e.NoPrice)
	case e.Flag == "--max-cost":
		return fmt.Sprintf("budget reached: spent %s of %s", formatAmount(e.SpentCost, e.Currency), formatAmount(e.LimitCost, e.Currency))
	}
	return fmt.Sprintf("budget reached: spent %d of %d tokens", e.Spent, e.Limit)
}

func (e *BudgetError) Unwrap() error { return jobs.ErrBudget }

func formatAmount(v float64, currency string) string {
	s := strconv.FormatFloat(v, 'f', 4, 64)
	if currency != "" {
		s += " " + currency
	}
	return s
}

// Budget is a run's limits on what a job may spend over all its runs.
type Budget struct {
	// MaxTokens, if not 0, is the token budget; SpentTokens what the job
	// used before this run.
	MaxTokens, SpentTokens int64
	// MaxCost, if not 0, is the cost budget in Prices' currency; SpentCost
	// what the job cost before this run. Every model the job asks for needs
	// a price.
	MaxCost, SpentCost float64
	Prices             jobs.Prices
}

// budget keeps a run within its Budget: each request reserves its worst
// case (EstimateParts: its prompt and max_tokens × n, priced by its model)
// before it is sent, and gives the reservation back for the usage
// reported once its attempt ends.
type budget struct {
	mu sync.Mutex
	Budget
	reserved reservation
	// reached is the flag of the limit the next request would have crossed
	// ("" while none was); noPrice a model without a price.
	reached string
	noPrice string
}

// reservation is what one request holds of the budget.
type reservation struct {
	tokens int64
	cost   float64
}

func newBudget(b Budget) *budget { return &budget{Budget: b} }

// active reports whether the run has a budget at all.
func (b *budget) active() bool { return b.MaxTokens > 0 || b.MaxCost > 0 }

// reserve reserves the worst case of a request for model with body, or
// reports false, and marks the budget reached, when that would cross a
// limit (or the model has no price and there is a cost budget).
func (b *budget) reserve(model string, body []byte) (reservation, bool) {
	if !b.active() {
		return reservation{}, true
	}
	prompt, completion := EstimateParts(body)
	r := reservation{tokens: prompt + completion}
	if b.MaxCost > 0 {
		p, ok := b.Prices.ByModel[model]
		if !ok {
			b.mu.Lock()
			b.reached, b.noPrice = "--max-cost", model
			b.mu.Unlock()
			return reservation{}, false
		}
		r.cost = p.Cost(prompt, 0, completion)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.MaxTokens > 0 && b.SpentTokens+b.reserved.tokens+r.tokens > b.MaxTokens {
		b.reached = "--max-tokens"
		return reservation{}, false
	}
	if b.MaxCost > 0 && b.SpentCost+b.reserved.cost+r.cost > b.MaxCost {
		b.reached = "--max-cost"
		return reservation{}, false
	}
	b.reserved.tokens += r.tokens
	b.reserved.cost += r.cost
	return r, true
}

// settle ends a reservation r of a request for model with the outcome o of
// its attempt (nil when the request was handed back unsent). A success
// whose usage is unknown spends its whole reservation, which errs on the
// safe side.
func (b *budget) settle(r reservation, model string, o *jobs.Outcome) {
	if !b.active() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserved.tokens -= r.tokens
	b.reserved.cost -= r.cost
	switch {
	case o == nil || o.Result == nil:
	case o.Result.Usage.Known:
		b.SpentTokens += o.Result.Usage.TotalTokens
		if cost, ok := b.Prices.Cost(model, o.Result.Usage); ok {
			b.SpentCost += cost
		}
	default:
		b.SpentTokens += r.tokens
		b.SpentCost += r.cost
	}
}

// err returns the run's *BudgetError once the budget was reached.
func (b *budget) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reached == "" {
		return nil
	}
	if b.noPrice != "" {
		return &BudgetError{Flag: b.reached, NoPrice: b.noPrice, Currency: b.Prices.Currency}
	}
	return &BudgetError{Flag: b.reached, Spent: b.SpentTokens, Limit: b.MaxTokens,
		SpentCost: b.SpentCost, LimitCost: b.MaxCost, Currency: b.Prices.Currency}
}
