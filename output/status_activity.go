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
// the job has an attempt; the ETA is told only while a run is live.
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

// etaText is the ETA of a live run; without one, nothing is being done, so
// no time is told.
func etaText(s jobs.Stats) string {
	e := s.ETA()
	left := Plural(e.Remaining, "request") + " left"
	switch {
	case e.State == jobs.ETADone:
		return "done"
	case s.Run == nil:
		return "none: no run is live (" + left + ")"
	case e.State == jobs.ETAUnknown:
		return "unknown (" + left + ", none completed in the last 5 minutes)"
	}
	return fmt.Sprintf("%s (%s at %.2f req/s, the rate of the last 5 minutes)", e.Left, left, s.Last5m.RequestsPerSecond())
}

// etaNoRun is the ETA state of StatusJSON when requests are left but no
// run is live.
const etaNoRun = "no_run"

// etaState is the ETA's state, or etaNoRun.
func etaState(s jobs.Stats, e jobs.ETA) string {
	if e.State != jobs.ETADone && s.Run == nil {
		return etaNoRun
	}
	return string(e.State)
}

// lowerBound is the mark of a figure that leaves out the results that
// reported no usage.
const lowerBound = "≥ "

// writeModels writes the table of tokens and cost per requested model. A
// model some of whose results reported no usage has its figures marked as
// lower bounds, and a column counts those results.
func writeModels(tw *tabwriter.Writer, models []jobs.ModelUsage, prices jobs.Prices) {
	if len(models) == 0 {
		return
	}
	without := 0
	for _, m := range models {
		without += m.WithoutUsage
	}
	fmt.Fprintln(tw)
	head := []string{"MODEL", "RESULTS", "PROMPT", "COMPLETION", "REASONING", "CACHED", "TOTAL", "COST"}
	if without > 0 {
		head = append(head, "NO USAGE")
	}
	row(tw, head...)
	for _, m := range models {
		u := m.Usage
		mark := ""
		if m.WithoutUsage > 0 {
			mark = lowerBound
		}
		cells := []string{m.Model, fmt.Sprint(m.Results)}
		if !u.Known && u.TotalTokens == 0 {
			cells = append(cells, "unknown", "unknown", "unknown", "unknown", "unknown")
		} else {
			for _, n := range []int64{u.PromptTokens, u.CompletionTokens, u.ReasoningTokens, u.CachedTokens, u.TotalTokens} {
				cells = append(cells, mark+fmt.Sprint(n))
			}
		}
		cost, ok := prices.ModelCost(m)
		if ok {
			cells = append(cells, mark+prices.FormatCost(cost, true))
		} else {
			cells = append(cells, prices.FormatCost(cost, false))
		}
		if without > 0 {
			cells = append(cells, fmt.Sprint(m.WithoutUsage))
		}
		row(tw, cells...)
	}
}

// jobCost is the cost of a job's usage: the sum over its models, known
// only when every model's cost is (it has a price and its results reported
// usage). Unpriced lists the models whose cost is unknown. A job without
// results costs 0 when prices were given, and is unknown when none was.
// LowerBound is set when some results of a priced model reported no usage:
// Total leaves them out.
type jobCost struct {
	Total      float64
	Known      bool
	LowerBound bool
	Unpriced   []string
}

func costOf(s jobs.Stats, prices jobs.Prices) jobCost {
	c := jobCost{Unpriced: []string{}}
	for _, m := range s.Models {
		if v, ok := prices.ModelCost(m); ok {
			c.Total += v
			c.LowerBound = c.LowerBound || m.WithoutUsage > 0
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
	case c.Known && c.LowerBound:
		return fmt.Sprintf("%s%s (%s reported no usage)", lowerBound, prices.FormatCost(c.Total, true),
			Plural(s.ResultsWithoutUsage, "result"))
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
