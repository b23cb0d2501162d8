package worker

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/llmbatch/llmbatch/jobs"
)

// BudgetError ends a run that stopped claiming because the next request's
// worst case no longer fitted Options.MaxTokens or Options.MaxCost, even
// with nothing in flight. It matches jobs.ErrBudget.
type BudgetError struct {
	// Flag is the budget that was reached: "--max-tokens" or "--max-cost".
	Flag string
	// Spent and Limit are tokens for --max-tokens (Spent counts this run and
	// the ones before it).
	Spent, Limit int64
	// SpentCost and LimitCost are amounts for --max-cost, in Currency.
	SpentCost, LimitCost float64
	Currency             string
	// CustomID is the request that did not fit, with its worst case in
	// NeedTokens (--max-tokens) or NeedCost (--max-cost).
	CustomID   string
	NeedTokens int64
	NeedCost   float64
	// NoPrice, when not empty, is a model the request that stopped the run
	// asked for and --max-cost has no price of; NoOutputPrice is true when
	// its price has no output price (MODEL=IN) but the request has output.
	NoPrice       string
	NoOutputPrice bool
}

func (e *BudgetError) Error() string {
	switch {
	case e.NoPrice != "" && e.NoOutputPrice:
		return fmt.Sprintf("budget: model %q has only an input price (MODEL=IN is for embeddings models), so the cost of its output cannot be kept within --max-cost (give MODEL=IN:OUT with --price or an \"output\" price with --prices)", e.NoPrice)
	case e.NoPrice != "":
		return fmt.Sprintf("budget: no price for model %q, so the cost of its requests cannot be kept within --max-cost (give one with --price or --prices)", e.NoPrice)
	case e.Flag == "--max-cost":
		return fmt.Sprintf("budget reached: spent %s of %s; %s may cost %s, %s left",
			formatAmount(e.SpentCost, e.Currency), formatAmount(e.LimitCost, e.Currency), e.CustomID,
			formatAmount(e.NeedCost, e.Currency), formatAmount(max(0, e.LimitCost-e.SpentCost), e.Currency))
	}
	return fmt.Sprintf("budget reached: spent %s of %s tokens; %s may use %s tokens, %s left",
		thousands(e.Spent), thousands(e.Limit), e.CustomID, thousands(e.NeedTokens), thousands(max(0, e.Limit-e.Spent)))
}

func (e *BudgetError) Unwrap() error { return jobs.ErrBudget }

// thousands writes n with commas between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

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
// reported once its attempt ends. A request whose worst case does not fit
// waits while reservations are in flight (they usually settle for far
// less); with none in flight, the budget is reached.
type budget struct {
	mu sync.Mutex
	Budget
	reserved reservation
	// inFlight counts the reservations not yet settled.
	inFlight int
	// reached is the flag of the limit the next request would have crossed
	// with nothing in flight ("" while none was), blocked the request and
	// its worst case, noPrice a model without a price (noOutput: without
	// an output price, for a request with output).
	reached  string
	blocked  string
	need     reservation
	noPrice  string
	noOutput bool
	// shared, when other runs share the job (Options.Shared), keeps the
	// reservations in the job's ledger too (see reserveShared); nil
	// otherwise.
	shared *shared
}

// reservation is what one request holds of the budget.
type reservation struct {
	tokens int64
	cost   float64
}

func newBudget(b Budget) *budget { return &budget{Budget: b} }

// active reports whether the run has a budget at all.
func (b *budget) active() bool { return b.MaxTokens > 0 || b.MaxCost > 0 }

// budgetFit is what reserve decided.
type budgetFit int

const (
	// budgetFits: the worst case is reserved; send the request.
	budgetFits budgetFit = iota
	// budgetWait: it does not fit beside the reservations in flight; ask
	// again once one settles.
	budgetWait
	// budgetReached: it does not fit even with nothing in flight, or its
	// model has no price: the run ends.
	budgetReached
)

// reserve reserves the worst case of request id for model with body.
func (b *budget) reserve(id, model string, body []byte) (reservation, budgetFit) {
	if !b.active() {
		return reservation{}, budgetFits
	}
	prompt, completion := EstimateParts(body)
	r := reservation{tokens: prompt + completion}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.MaxCost > 0 {
		p, ok := b.Prices.ByModel[model]
		if ok {
			r.cost, ok = p.Cost(prompt, 0, completion)
		}
		if !ok {
			b.reached, b.noPrice, b.noOutput = "--max-cost", model, p.NoOutput
			return reservation{}, budgetReached
		}
	}
	if b.shared != nil {
		return b.reserveShared(id, r)
	}
	flag := b.crosses(r)
	switch {
	case flag == "":
		b.reserved.tokens += r.tokens
		b.reserved.cost += r.cost
		b.inFlight++
		return r, budgetFits
	case b.inFlight > 0:
		return reservation{}, budgetWait
	}
	b.reached, b.blocked, b.need = flag, id, r
	return reservation{}, budgetReached
}

// crosses names the limit r would cross beside what is spent and
// reserved, or "".
func (b *budget) crosses(r reservation) string {
	if b.MaxTokens > 0 && b.SpentTokens+b.reserved.tokens+r.tokens > b.MaxTokens {
		return "--max-tokens"
	}
	if b.MaxCost > 0 && b.SpentCost+b.reserved.cost+r.cost > b.MaxCost {
		return "--max-cost"
	}
	return ""
}

// settle ends a reservation r of a request for model with the outcome o of
// its attempt (nil when the request was handed back unsent).
func (b *budget) settle(r reservation, model string, o *jobs.Outcome) {
	if !b.active() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserved.tokens -= r.tokens
	b.reserved.cost -= r.cost
	b.inFlight--
	spent := b.spentBy(r, model, o)
	b.SpentTokens += spent.Tokens
	b.SpentCost += spent.Cost
	if b.shared != nil {
		b.shared.settle(r, spent)
	}
}

// spentBy is what the attempt of a request for model that reserved r
// spent, by its outcome o. A success whose usage is unknown spends its
// whole reservation, which errs on the safe side.
func (b *budget) spentBy(r reservation, model string, o *jobs.Outcome) jobs.Amount {
	switch {
	case o == nil || o.Result == nil:
		return jobs.Amount{}
	case o.Result.Usage.Known:
		cost, ok := b.Prices.Cost(model, o.Result.Usage)
		if !ok {
			cost = r.cost // the safe side, as for unknown usage
		}
		return jobs.Amount{Tokens: o.Result.Usage.TotalTokens, Cost: cost}
	}
	return jobs.Amount{Tokens: r.tokens, Cost: r.cost}
}

// err returns the run's *BudgetError once the budget was reached.
func (b *budget) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reached == "" {
		return nil
	}
	if b.noPrice != "" {
		return &BudgetError{Flag: b.reached, NoPrice: b.noPrice, NoOutputPrice: b.noOutput, Currency: b.Prices.Currency}
	}
	return &BudgetError{Flag: b.reached, Spent: b.SpentTokens, Limit: b.MaxTokens,
		SpentCost: b.SpentCost, LimitCost: b.MaxCost, Currency: b.Prices.Currency,
		CustomID: b.blocked, NeedTokens: b.need.tokens, NeedCost: b.need.cost}
}
