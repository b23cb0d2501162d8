package output

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// hostile is text from the database that must come out escaped.
const hostile = `<img src=x onerror="alert(1)">&amp;`

// sampleReport is a job of 10 requests on two models, one without usage,
// with errors of a known and an unknown class, and a failed request whose
// custom_id and message are hostile.
func sampleReport() jobs.Report {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	hist := jobs.Histogram{Count: 8, Min: 100 * time.Millisecond, P50: 300 * time.Millisecond, P95: 900 * time.Millisecond,
		P99: 900 * time.Millisecond, Max: 5 * time.Second, Bins: []jobs.Bin{
			{Lo: 0, Hi: 500 * time.Millisecond, Count: 6},
			{Lo: 500 * time.Millisecond, Hi: time.Second, Count: 1},
			{Lo: time.Second, Hi: 5 * time.Second, Count: 1, Overflow: true}}}
	return jobs.Report{
		Stats: jobs.Stats{
			Job:    jobs.Job{Name: "night" + hostile, Source: "in.jsonl", State: jobs.JobActive, CreatedAt: start, Total: 10},
			Counts: map[jobs.Status]int{jobs.StatusSucceeded: 8, jobs.StatusFailed: 1, jobs.StatusPending: 1},
			Usage:  jobs.Usage{Known: true, PromptTokens: 800, CompletionTokens: 1200, ReasoningTokens: 700, TotalTokens: 2000},
			Errors: []jobs.ClassCount{{Class: jobs.ClassRateLimited, Count: 3, Example: "slow down " + hostile},
				{Class: "weird_class", Count: 1, Example: "?"}},
			Models: []jobs.ModelUsage{
				{Model: "deepseek/deepseek-r1", Results: 6, Usage: jobs.Usage{Known: true, PromptTokens: 800, CompletionTokens: 1200, ReasoningTokens: 700, TotalTokens: 2000}},
				{Model: "m" + hostile, Results: 2}},
			LatencyP50: 300 * time.Millisecond, LatencyP95: 900 * time.Millisecond,
		},
		Start: start, End: start.Add(3 * time.Second), BucketStart: start, Bucket: time.Second,
		Completed: []int{3, 0, 5, 0},
		Errors: []jobs.ClassSeries{{Class: jobs.ClassRateLimited, Total: 3, Counts: []int{1, 0, 2, 0}},
			{Class: "weird_class", Total: 1, Counts: []int{0, 1, 0, 0}}},
		Latency: hist,
		Slowest: []jobs.SlowRequest{{CustomID: "slow" + hostile, Model: "deepseek/deepseek-r1", Latency: 5 * time.Second, Attempts: 2}},
		Failed: []jobs.FailedRequest{{CustomID: "id" + hostile, Model: "deepseek/deepseek-r1", Attempts: 1,
			Failure: jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "bad " + hostile}}},
		FailedTotal: 4,
	}
}

func writeReport(t *testing.T, r jobs.Report, prices jobs.Prices) string {
	t.Helper()
	var b strings.Builder
	if err := WriteReport(&b, r, ReportInfo{Prices: prices, Generated: r.Start}); err != nil {
		t.Fatalf("WriteReport: %v", err)
	}
	return b.String()
}

// charts returns each chart's id with its data-points and the number of
// data marks it holds.
func charts(t *testing.T, page string) map[string][2]int {
	t.Helper()
	out := map[string][2]int{}
	re := regexp.MustCompile(`(?s)<svg class="chart" id="([^"]+)" data-points="(\d+)".*?</svg>`)
	for _, m := range re.FindAllStringSubmatch(page, -1) {
		n, _ := strconv.Atoi(m[2])
		out[m[1]] = [2]int{n, strings.Count(m[0], `<rect class="mark`)}
	}
	return out
}

func TestReportPage(t *testing.T) {
	page := writeReport(t, sampleReport(), jobs.Prices{Currency: "USD", ByModel: map[string]jobs.Price{
		"deepseek/deepseek-r1": {Input: 1, Output: 2}}})
	got := charts(t, page)
	// Throughput: 2 bars; latency: 3 bins; models: r1's prompt, answer and
	// reasoning; errors: 3 non-zero cells. No TTFT: nothing was streamed.
	want := map[string][2]int{"chart-throughput": {2, 2}, "chart-latency": {3, 3}, "chart-models": {3, 3}, "chart-errors": {3, 3}}
	if len(got) != len(want) {
		t.Errorf("charts = %v, want %v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: data-points and marks = %v, want %v", id, got[id], w)
		}
	}
	for _, s := range []string{
		`no streamed requests`,
		`class="mark overflow"`,                       // the latency outlier bin
		`0.0032 USD`,                                  // r1: 800 prompt at 1 + 1200 completion at 2, per million
		`&#43; unknown for m&lt;img`,                  // the other model has no price
		`3 more not shown`,                            // 4 failed, 1 listed
		`<td class="num">400</td>`,                    // the failed request's status
		`12:00:00 – 12:00:01 · completed: 3 requests`, // a bar's tooltip
	} {
		if !strings.Contains(page, s) {
			t.Errorf("report lacks %q", s)
		}
	}
}

// TestReportWithoutUsage: results that reported no usage make the tokens
// and the cost lower bounds, marked "≥" in the totals and the model table.
func TestReportWithoutUsage(t *testing.T) {
	r := sampleReport()
	r.Stats.Models[0].WithoutUsage, r.Stats.ResultsWithoutUsage = 2, 2
	prices := jobs.Prices{Currency: "USD", ByModel: map[string]jobs.Price{
		"deepseek/deepseek-r1": {Input: 1, Output: 2}, "m" + hostile: {Input: 1, Output: 1}}}
	r.Stats.Models[1].Usage = jobs.Usage{Known: true, PromptTokens: 10, TotalTokens: 10}
	page := writeReport(t, r, prices)
	for _, s := range []string{
		`<div class="label">Tokens</div><div class="value">≥ 2,000</div><div class="note">at least: 2 results reported no usage</div>`,
		`<div class="label">Cost</div><div class="value">≥ 0.0032 USD</div><div class="note">at least: 2 results reported no usage</div>`,
		`<td class="num">≥ 800</td>`, `<td class="num">≥ 0.0032 USD</td>`, // r1's row
		`<td class="num">10</td>`,                                                        // the other model's, all reported
		`<td class="num">≥ 2,010</td>`, `<td class="num">≥ 0.0032 USD</td></tr></tfoot>`, // all models
		`≥ marks a lower bound: 2 results reported no usage`,
	} {
		if !strings.Contains(page, s) {
			t.Errorf("report lacks %q", s)
		}
	}
	r.Stats.Models[0].WithoutUsage, r.Stats.ResultsWithoutUsage = 0, 0
	if page := writeReport(t, r, prices); strings.Contains(page, "≥") {
		t.Error("report marks a lower bound though every result reported usage")
	}
}

func TestReportEscapes(t *testing.T) {
	page := writeReport(t, sampleReport(), jobs.Prices{})
	if strings.Contains(page, "<img") || strings.Contains(page, `onerror="`) {
		t.Error("report holds the hostile text unescaped")
	}
	// html/template escapes in the page, html.EscapeString in the charts.
	for _, s := range []string{"night&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;amp;",
		"bad &lt;img", "id&lt;img", "slow&lt;img", "slow down &lt;img", `class="row-label">m&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;amp;</text>`} {
		if !strings.Contains(page, s) {
			t.Errorf("report lacks the escaped %q", s)
		}
	}
}

func TestReportEmptyJob(t *testing.T) {
	r := jobs.Report{Stats: jobs.Stats{Job: jobs.Job{Name: "fresh", Total: 3}, Counts: map[jobs.Status]int{jobs.StatusPending: 3}}}
	page := writeReport(t, r, jobs.Prices{})
	if got := charts(t, page); len(got) != 0 {
		t.Errorf("charts %v in the report of a job without attempts", got)
	}
	for _, s := range []string{"no completed requests yet", "no results yet", "no streamed requests",
		"no token usage reported yet", "no failed attempts", "no failed requests", `<div class="value">unknown</div>`} {
		if !strings.Contains(page, s) {
			t.Errorf("report lacks %q", s)
		}
	}
}

func TestReportFormats(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{groupDigits(0), "0"}, {groupDigits(999), "999"}, {groupDigits(1234567), "1,234,567"}, {groupDigits(-1234), "-1,234"},
		{compactNumber(950), "950"}, {compactNumber(1500), "1.5k"}, {compactNumber(2e6), "2M"}, {compactNumber(0.5), "0.5"},
		{shortDuration(850 * time.Millisecond), "850ms"}, {shortDuration(1250 * time.Millisecond), "1.25s"},
		{shortDuration(2 * time.Second), "2s"}, {shortDuration(12345 * time.Millisecond), "12.3s"},
		{shortDuration(245 * time.Second), "4m05s"}, {shortDuration(123 * time.Minute), "2h03m"},
		{rate(30, time.Second), "30/s"}, {rate(30, time.Minute), "30/min"}, {rate(1, time.Hour), "1/h"}, {rate(0, time.Second), "–"},
		{percent(1, 3), "33.3%"}, {percent(1, 10000), "<0.1%"}, {percent(0, 0), "0%"},
		{clip("abcdef", 4), "abc…"}, {clip("abc", 4), "abc"},
		{countOf(1, "request"), "1 request"}, {countOf(0, "request"), "0 requests"}, {countOf(1234, "token"), "1,234 tokens"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tt := range []struct{ max, step, top float64 }{
		{0, 1, 1}, {3, 1, 3}, {10, 5, 10}, {37, 10, 40}, {1234, 500, 1500},
	} {
		if step, top := niceTicks(tt.max); step != tt.step || top != tt.top {
			t.Errorf("niceTicks(%v) = %v, %v; want %v, %v", tt.max, step, top, tt.step, tt.top)
		}
	}
}
