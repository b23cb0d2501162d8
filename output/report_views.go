package output

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

func kpis(r jobs.Report, prices jobs.Prices) []kpi {
	s := r.Stats
	t, succeeded, failed := total(s), s.Counts[jobs.StatusSucceeded], s.Counts[jobs.StatusFailed]
	done := 0
	for st, c := range s.Counts {
		if st.Final() {
			done += c
		}
	}
	failedAttempts := 0
	for _, e := range s.Errors {
		failedAttempts += e.Count
	}
	list := []kpi{
		{Label: "Requests", Value: groupDigits(int64(t)), Note: fmt.Sprintf("%s done (%s)", groupDigits(int64(done)), percent(done, t))},
		{Label: "Succeeded", Value: groupDigits(int64(succeeded)), Note: percent(succeeded, t) + " of all", Tone: "good"},
		{Label: "Failed", Value: groupDigits(int64(failed)), Note: percent(failed, t) + " of all", Tone: tone(failed > 0, "bad")},
		{Label: "Attempts", Value: groupDigits(int64(s.Attempts)), Note: groupDigits(int64(failedAttempts)) + " of them failed"},
		tokensKPI(s.Usage, s.ResultsWithoutUsage),
		costKPI(s.Models, prices),
		{Label: "Latency p50", Value: durationOrDash(s.LatencyP50), Note: "p95 " + durationOrDash(s.LatencyP95) + " · p99 " + durationOrDash(r.Latency.P99)},
		ttftKPI(r),
		{Label: "Wall time", Value: durationOrDash(r.End.Sub(r.Start)), Note: "first attempt to last"},
	}
	// Throughput goes last in the first row.
	thr := kpi{Label: "Throughput", Value: rate(succeeded, r.End.Sub(r.Start)), Note: "results per unit of wall time"}
	return slices.Insert(list, 4, thr)
}

func tone(cond bool, t string) string {
	if cond {
		return t
	}
	return ""
}

// tokensKPI is the job's tokens; the results that reported no usage make
// it a lower bound.
func tokensKPI(u jobs.Usage, without int) kpi {
	if !u.Known && u.TotalTokens == 0 {
		return kpi{Label: "Tokens", Value: "unknown", Note: "no response reported usage"}
	}
	if without > 0 {
		return kpi{Label: "Tokens", Value: lowerBound + groupDigits(u.TotalTokens),
			Note: "at least: " + withoutUsageNote(without)}
	}
	return kpi{Label: "Tokens", Value: groupDigits(u.TotalTokens),
		Note: fmt.Sprintf("prompt %s · completion %s", compactNumber(float64(u.PromptTokens)), compactNumber(float64(u.CompletionTokens)))}
}

func withoutUsageNote(n int) string {
	return Plural(n, "result") + " reported no usage"
}

func ttftKPI(r jobs.Report) kpi {
	if r.TTFT.Count == 0 {
		return kpi{Label: "First token p50", Value: "–", Note: "no streamed requests"}
	}
	return kpi{Label: "First token p50", Value: shortDuration(r.TTFT.P50),
		Note: "p95 " + shortDuration(r.TTFT.P95) + " · " + groupDigits(int64(r.TTFT.Count)) + " streamed"}
}

// costKPI sums the cost of the models that have a price; the models that
// have none make the total unknown, and the note names them. Results of a
// priced model that reported no usage make it a lower bound.
func costKPI(models []jobs.ModelUsage, prices jobs.Prices) kpi {
	var sum float64
	var missing []string
	without := 0
	for _, m := range models {
		c, ok := prices.ModelCost(m)
		if !ok {
			missing = append(missing, m.Model)
		} else {
			without += m.WithoutUsage
		}
		sum += c
	}
	k := kpi{Label: "Cost"}
	switch {
	case len(models) == 0 && len(prices.ByModel) == 0, len(missing) == len(models) && len(models) > 0:
		k.Value, k.Note = "unknown", "no price given: --price MODEL=IN:OUT"
	case len(missing) > 0:
		k.Value = prices.FormatCost(sum, true)
		k.Note = "+ unknown for " + clip(strings.Join(missing, ", "), 60)
	case without > 0:
		k.Value, k.Note = lowerBound+prices.FormatCost(sum, true), "at least: "+withoutUsageNote(without)
	default:
		k.Value, k.Note = prices.FormatCost(sum, true), "at the prices given, per million tokens"
	}
	return k
}

// modelsView draws tokens by model as stacked bars (uncached prompt, cached
// prompt, answer, reasoning) and fills the table with the cost of each;
// "≥" marks the figures of a model some of whose results reported no
// usage.
func modelsView(s jobs.Stats, prices jobs.Prices) (chartView, []modelRow, modelRow) {
	var rows []modelRow
	var bars []hbar
	var sum jobs.Usage
	var cost float64
	costKnown := len(s.Models) > 0
	drawn := false
	results, without := 0, 0
	for _, m := range s.Models {
		u := m.Usage
		c, ok := prices.ModelCost(m)
		cost, costKnown, sum = cost+c, costKnown && ok, sum.Add(u)
		results, without = results+m.Results, without+m.WithoutUsage
		rows = append(rows, usageRow(m.Model, m.Results, u, m.WithoutUsage, boundedCost(prices, c, ok, m.WithoutUsage)))
		segs := []segment{
			{"prompt", colorPrompt, u.PromptTokens - min(u.CachedTokens, u.PromptTokens)},
			{"cached prompt", colorCached, min(u.CachedTokens, u.PromptTokens)},
			{"answer", colorAnswer, u.CompletionTokens - min(u.ReasoningTokens, u.CompletionTokens)},
			{"reasoning", colorReasoning, min(u.ReasoningTokens, u.CompletionTokens)},
		}
		for _, sg := range segs {
			drawn = drawn || sg.value > 0
		}
		note := "usage unknown"
		if u.Known {
			note = boundMark(m.WithoutUsage) + groupDigits(u.TotalTokens) + " tokens · " + boundedCost(prices, c, ok, m.WithoutUsage)
		}
		bars = append(bars, hbar{label: m.Model, note: note, segments: segs})
	}
	totalRow := usageRow("all models", results, sum, without, boundedCost(prices, cost, costKnown, without))
	if !drawn {
		return chartView{Empty: "no token usage reported yet"}, rows, totalRow
	}
	v := chartView{
		SVG: hbarChart("chart-models", "Tokens by model", bars, "token"),
		Sub: "Tokens of the recorded results by requested model; cost at the prices given",
		Legend: []legendItem{{"prompt", colorPrompt, ""}, {"cached prompt", colorCached, ""},
			{"answer", colorAnswer, ""}, {"reasoning", colorReasoning, ""}},
	}
	if without > 0 {
		v.Footnotes = append(v.Footnotes, fmt.Sprintf("≥ marks a lower bound: %s, whose tokens and cost are not counted.",
			withoutUsageNote(without)))
	}
	if prices.Currency != "" {
		v.Footnotes = append(v.Footnotes, "Currency: "+prices.Currency+" (a label; llmbatch converts nothing).")
	}
	return v, rows, totalRow
}

// boundMark is lowerBound when some results reported no usage.
func boundMark(without int) string {
	if without > 0 {
		return lowerBound
	}
	return ""
}

// boundedCost is a cost, "unknown" when not known, marked as a lower bound
// when some of its results reported no usage.
func boundedCost(prices jobs.Prices, c float64, known bool, without int) string {
	if !known {
		return prices.FormatCost(c, false)
	}
	return boundMark(without) + prices.FormatCost(c, true)
}

// usageRow is a line of the model table; without counts its results that
// reported no usage, which make its figures lower bounds.
func usageRow(model string, results int, u jobs.Usage, without int, cost string) modelRow {
	row := modelRow{Model: model, Results: groupDigits(int64(results)), Cost: cost}
	if !u.Known && u.TotalTokens == 0 {
		row.Prompt, row.Cached, row.Completion, row.Reasoning, row.Total = "unknown", "–", "–", "–", "unknown"
		return row
	}
	mark := boundMark(without)
	row.Prompt, row.Cached = mark+groupDigits(u.PromptTokens), mark+groupDigits(u.CachedTokens)
	row.Completion, row.Reasoning = mark+groupDigits(u.CompletionTokens), mark+groupDigits(u.ReasoningTokens)
	row.Total = mark + groupDigits(u.TotalTokens)
	return row
}

// errorsView stacks the failed attempts of each class per time bucket, and
// lists every class with one example message.
func errorsView(r jobs.Report, loc *time.Location) (chartView, []classRow) {
	var classes []classRow
	for _, e := range r.Stats.Errors {
		classes = append(classes, classRow{Class: string(e.Class), Color: classColor(e.Class),
			Count: groupDigits(int64(e.Count)), Example: clip(e.Example, maxMessage)})
	}
	if len(r.Errors) == 0 {
		return chartView{Empty: "no failed attempts: every attempt got its answer"}, classes
	}
	var layers []series
	var legend []legendItem
	total := 0
	for _, e := range r.Errors {
		col := classColor(e.Class)
		layers = append(layers, series{name: string(e.Class), color: col, counts: e.Counts})
		legend = append(legend, legendItem{Name: string(e.Class), Color: col, Value: groupDigits(int64(e.Total))})
		total += e.Total
	}
	return chartView{
		SVG: timeChart("chart-errors", "Failed attempts by error class over time", r.BucketStart.In(loc), r.Bucket, layers, "attempt"),
		Sub: fmt.Sprintf("%s per %s, by class; retried attempts count each time",
			countOf(int64(total), "failed attempt"), shortDuration(r.Bucket)),
		Legend: legend,
	}, classes
}
