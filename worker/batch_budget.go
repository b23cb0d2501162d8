package worker

import (
	"github.com/llmbatch/llmbatch/jobs"
)

// The budget of a batch-mode run: each line of a file reserves its worst
// case, at the batch price, before the file is uploaded, and gives it back
// when its answer is recorded (spending what the answer used) or when its
// batch leaves it unanswered.

// batchWorst is the worst case of a line of model with body in a batch.
func (b *budget) batchWorst(model string, body []byte) (reservation, bool) {
	prompt, completion := EstimateParts(body)
	r := reservation{tokens: prompt + completion}
	if b.MaxCost > 0 {
		p, ok := b.Prices.ByModel[model]
		if ok {
			r.cost, ok = p.Cost(prompt, 0, completion)
			r.cost *= b.Prices.BatchFactor()
		}
		if !ok {
			return r, false
		}
	}
	return r, true
}

// fitBatch reserves the worst case of a line for a new file, or reports
// that it does not fit (and, with nothing reserved, that the budget is
// reached).
func (b *budget) fitBatch(id, model string, body []byte) bool {
	if !b.active() {
		return true
	}
	r, priced := b.batchWorst(model, body)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !priced {
		if b.inFlight == 0 {
			b.reached, b.noPrice, b.noOutput = "--max-cost", model, b.Prices.ByModel[model].NoOutput
		}
		return false
	}
	if flag := b.crosses(r); flag != "" {
		if b.inFlight == 0 {
			b.reached, b.blocked, b.need = flag, id, r
		}
		return false
	}
	b.reserved.tokens += r.tokens
	b.reserved.cost += r.cost
	b.inFlight++
	return true
}

// reserveBatch holds the worst case of a line of a batch made before.
func (b *budget) reserveBatch(model string, body []byte) {
	if !b.active() {
		return
	}
	r, _ := b.batchWorst(model, body)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserved.tokens += r.tokens
	b.reserved.cost += r.cost
	b.inFlight++
}

// releaseBatch gives back the worst case of a line once its batch answered
// it or left it.
func (b *budget) releaseBatch(model string, body []byte) {
	if !b.active() || body == nil {
		return
	}
	r, _ := b.batchWorst(model, body)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserved.tokens -= r.tokens
	b.reserved.cost -= r.cost
	b.inFlight--
}

// spend adds what a batch's answer to a line with body used, at the batch
// price; an answer of unknown usage spends its worst case, on the safe side.
func (b *budget) spend(model string, body []byte, res *jobs.Result) {
	if !b.active() {
		return
	}
	worst, _ := b.batchWorst(model, body)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !res.Usage.Known {
		b.SpentTokens += worst.tokens
		b.SpentCost += worst.cost
		return
	}
	b.SpentTokens += res.Usage.TotalTokens
	if cost, ok := b.Prices.Cost(model, res.Usage); ok {
		b.SpentCost += cost * b.Prices.BatchFactor()
	}
}
