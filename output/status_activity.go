package output

import (
	"fmt"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// writeActivity writes the rows of throughput (rate), active span and ETA:
//
//	rate    last 1m: 8.20 req/s, 4100.0 tok/s; last 5m: 7.90 req/s, 3950.0 tok/s
//	active  2025-01-02T03:04:05Z to 2025-01-02T05:06:07Z (2h2m2s): 8.10 req/s, 4000.0 tok/s
//	eta     7m43s (3800 requests left at 8.20 req/s, the rate of the last 5 minutes)
//
// A window in which nothing completed is "idle"; active is left out until
// the job has an attempt.
func writeActivity(tw *tabwriter.Writer, s jobs.Stats) {
	row(tw, "rate", fmt.Sprintf("last 1m: %s; last 5m: %s", rateText(s.Last1m), rateText(s.Last5m)))
	if !s.FirstAttempt.IsZero() {
		row(tw, "active", fmt.Sprintf("%s to %s (%s): %s", formatTime(s.FirstAttempt), formatTime(s.LastAttempt),
			s.LastAttempt.Sub(s.FirstAttempt).Round(time.Second), rateText(s.Overall())))
	}
	row(tw, "eta", etaText(s))
}

func rateText(t jobs.Throughput) string {
	if t.Idle() {
		return "idle"
	}
	tokens := "tok/s unknown"
	if t.TokensKnown {
		tokens = fmt.Sprintf("%.1f tok/s", t.TokensPerSecond())
	}
	return fmt.Sprintf("%.2f req/s, %s", t.RequestsPerSecond(), tokens)
}

func etaText(s jobs.Stats) string {
	e := s.ETA()
	switch e.State {
	case jobs.ETADone:
		return "done"
	case jobs.ETAUnknown:
		return fmt.Sprintf("unknown (%d requests left, none completed in the last 5 minutes)", e.Remaining)
	}
	return fmt.Sprintf("%s (%d requests left at %.2f req/s, the rate of the last 5 minutes)",
		e.Left, e.Remaining, s.Last5m.RequestsPerSecond())
}

// writeModels writes the table of tokens and cost per requested model.
func writeModels(tw *tabwriter.Writer, models []jobs.ModelUsage, prices jobs.Prices) {
	if len(models) == 0 {
		return
	}
	fmt.Fprintln(tw)
	row(tw, "MODEL", "RESULTS", "PROMPT", "COMPLETION", "REASONING", "CACHED", "TOTAL", "COST")
	for _, m := range models {
		u := m.Usage
		cells := []string{m.Model, fmt.Sprint(m.Results)}
		if !u.Known && u.TotalTokens == 0 {
			cells = append(cells, "unknown", "unknown", "unknown", "unknown", "unknown")
		} else {
			for _, n := range []int64{u.PromptTokens, u.CompletionTokens, u.ReasoningTokens, u.CachedTokens, u.TotalTokens} {
				cells = append(cells, fmt.Sprint(n))
			}
		}
		cost, ok := prices.Cost(m.Model, m.Usage)
		row(tw, append(cells, prices.FormatCost(cost, ok))...)
	}
}

// jobCost is the cost of a job's usage: the sum over its models, known
// only when every model's cost is (it has a price and its results reported
// usage). Unpriced lists the models whose cost is unknown. A job without
// results costs 0 when prices were given, and is unknown when none was.
type jobCost struct {
	Total    float64
	Known    bool
	Unpriced []string
}

func costOf(s jobs.Stats, prices jobs.Prices) jobCost {
	c := jobCost{Unpriced: []string{}}
	for _, m := range s.Models {
		if v, ok := prices.Cost(m.Model, m.Usage); ok {
			c.Total += v
		} else {
			c.Unpriced = append(c.Unpriced, m.Model)
		}
	}
	c.Known = len(c.Unpriced) == 0 && (len(s.Models) > 0 || len(prices.ByModel) > 0)
	return c
}

func costText(s jobs.Stats, prices jobs.Prices) string {
	c := costOf(s, prices)
	switch {
	case c.Known:
		return prices.FormatCost(c.Total, true)
	case len(prices.ByModel) == 0:
		return "unknown (no prices: --price MODEL=IN:OUT[:CACHED] or --prices FILE)"
	case len(c.Unpriced) < len(s.Models):
		return fmt.Sprintf("%s + unknown (no price or no usage for %s)", prices.FormatCost(c.Total, true), strings.Join(c.Unpriced, ", "))
	}
	return fmt.Sprintf("unknown (no price or no usage for %s)", strings.Join(c.Unpriced, ", "))
}

// round3 rounds a rate to three decimals, so that the JSON shows 8.2, not
// 8.200000000000001.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// roundCost rounds an amount to a billionth: small jobs cost millionths.
func roundCost(x float64) float64 { return math.Round(x*1e9) / 1e9 }
