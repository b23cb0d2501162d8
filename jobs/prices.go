package jobs

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Price is what a model costs per million tokens. Cached prompt tokens cost
// Cached when the user gave a cached price, else Input. NoOutput marks a
// price given without an output price (MODEL=IN, meant for embeddings
// models): output tokens then have no known cost, rather than a cost of 0,
// so a chat model priced that way by mistake is not taken for free.
type Price struct {
	Input     float64 `json:"input"`
	Output    float64 `json:"output"`
	Cached    float64 `json:"cached"`
	HasCached bool    `json:"has_cached,omitempty"`
	NoOutput  bool    `json:"no_output,omitempty"`
}

// Prices maps models to prices. Currency is only a label the user picks:
// llmbatch ships no price table, which would silently go stale.
type Prices struct {
	Currency string           `json:"currency,omitempty"`
	ByModel  map[string]Price `json:"models,omitempty"`
	// BatchDiscount is the part of the price taken off for tokens answered
	// through a provider batch (--batch-discount); nil is the providers'
	// usual half price, DefaultBatchDiscount.
	BatchDiscount *float64 `json:"batch_discount,omitempty"`
}

// DefaultBatchDiscount is what OpenAI, Novita/PPIO, Together and Groq take
// off their prices for the Batch API: half.
const DefaultBatchDiscount = 0.5

// BatchFactor is what a token answered through a provider batch costs, as
// a part of its price.
func (ps Prices) BatchFactor() float64 {
	if ps.BatchDiscount == nil {
		return 1 - DefaultBatchDiscount
	}
	return 1 - *ps.BatchDiscount
}

// ModelCost is the cost of a model's results: their online part at the
// price, their batch part at the batch price; false when the model has no
// price or the price cannot cover the usage (see Price.Cost).
func (ps Prices) ModelCost(m ModelUsage) (float64, bool) {
	online, ok := ps.Cost(m.Model, m.Usage.Sub(m.BatchUsage))
	if !ok || m.BatchResults == 0 {
		return online, ok
	}
	batch, ok := ps.Cost(m.Model, m.BatchUsage)
	return online + batch*ps.BatchFactor(), ok
}

// priceForms is what a price may look like, for the messages of errors.
const priceForms = "want MODEL=IN:OUT, MODEL=IN:OUT:CACHED or, for a model with no output such as an embeddings model, MODEL=IN (per million tokens)"

// ParsePrice reads "MODEL=IN:OUT" or "MODEL=IN:OUT:CACHED", prices per
// million tokens, or "MODEL=IN" for a model that bills no output tokens
// (embeddings): it has no output price (Price.NoOutput).
func ParsePrice(spec string) (string, Price, error) {
	eq := strings.LastIndex(spec, "=")
	if eq <= 0 {
		return "", Price{}, fmt.Errorf("price %q: %s", spec, priceForms)
	}
	model, parts := spec[:eq], strings.Split(spec[eq+1:], ":")
	if len(parts) > 3 {
		return "", Price{}, fmt.Errorf("price %q: %s", spec, priceForms)
	}
	var v [3]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return "", Price{}, fmt.Errorf("price %q: %q is not a price (a number of at least 0)", spec, p)
		}
		v[i] = f
	}
	return model, Price{Input: v[0], Output: v[1], Cached: v[2], HasCached: len(parts) == 3, NoOutput: len(parts) == 1}, nil
}

// ParsePrices reads a prices file:
//
//	{"currency": "USD", "models": {"deepseek/deepseek-r1": {"input": 0.55, "output": 2.19, "cached": 0.14},
//	  "text-embedding-3-small": {"input": 0.02}}}
//
// where "cached" is optional, and so is "output", left out for a model
// with no output tokens, such as an embeddings model (Price.NoOutput).
func ParsePrices(data []byte) (Prices, error) {
	var f struct {
		Currency string `json:"currency"`
		Models   map[string]struct {
			Input  *float64 `json:"input"`
			Output *float64 `json:"output"`
			Cached *float64 `json:"cached"`
		} `json:"models"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return Prices{}, fmt.Errorf("prices file: %w", err)
	}
	ps := Prices{Currency: f.Currency, ByModel: map[string]Price{}}
	for model, m := range f.Models {
		if m.Input == nil || *m.Input < 0 || (m.Output != nil && *m.Output < 0) || (m.Cached != nil && *m.Cached < 0) {
			return Prices{}, fmt.Errorf("prices file: model %q needs an \"input\" price (and, but for embeddings models, an \"output\" price) of at least 0", model)
		}
		p := Price{Input: *m.Input, NoOutput: m.Output == nil}
		if m.Output != nil {
			p.Output = *m.Output
		}
		if m.Cached != nil {
			p.Cached, p.HasCached = *m.Cached, true
		}
		ps.ByModel[model] = p
	}
	return ps, nil
}

// Set adds or replaces the price of one model.
func (ps *Prices) Set(model string, p Price) {
	if ps.ByModel == nil {
		ps.ByModel = map[string]Price{}
	}
	ps.ByModel[model] = p
}

// Cost returns what usage u of model cost, and false when the model has no
// price, the usage is unknown or the price cannot cost it (Price.Cost).
func (ps Prices) Cost(model string, u Usage) (float64, bool) {
	p, ok := ps.ByModel[model]
	if !ok || !u.Known {
		return 0, false
	}
	return p.Cost(u.PromptTokens, u.CachedTokens, u.CompletionTokens)
}

// Cost returns the price of prompt tokens (cached of them from the cache)
// and completion tokens, and false when there are completion tokens but
// the price has no output price (NoOutput).
func (p Price) Cost(prompt, cached, completion int64) (float64, bool) {
	if p.NoOutput && completion > 0 {
		return 0, false
	}
	cachedPrice := p.Input
	if p.HasCached {
		cachedPrice = p.Cached
	}
	cached = min(cached, prompt)
	return (float64(prompt-cached)*p.Input + float64(cached)*cachedPrice + float64(completion)*p.Output) / 1e6, true
}

// FormatCost renders an amount with the currency label, or "unknown".
func (ps Prices) FormatCost(amount float64, known bool) string {
	if !known {
		return "unknown"
	}
	s := strconv.FormatFloat(amount, 'f', 4, 64)
	if ps.Currency == "" {
		return s
	}
	return s + " " + ps.Currency
}
