package output

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// The report page is one html/template with its style sheet and its
// self-check script inlined, so that the written file needs nothing from
// the network; a Content-Security-Policy in the page forbids fetching
// anything at all. html/template escapes every text from the database.

//go:embed report.html.tmpl
var reportHTML string

//go:embed report.css
var reportCSS string

//go:embed report.js
var reportJS string

var reportTemplate = template.Must(template.New("report").Parse(reportHTML))

// ReportInfo is what the report needs besides the job's data.
type ReportInfo struct {
	Prices jobs.Prices
	// Generated is when the report was written; Location is the time zone
	// its times are shown in (nil means UTC).
	Generated time.Time
	Location  *time.Location
}

// WriteReport writes the job's report as one self-contained HTML page:
// a header with the job and its totals, throughput over time, latency and
// time-to-first-token histograms, tokens and cost by model, errors by class
// over time, the slowest requests and the failed requests with their last
// error.
func WriteReport(w io.Writer, r jobs.Report, info ReportInfo) error {
	if info.Location == nil {
		info.Location = time.UTC
	}
	return reportTemplate.Execute(w, newReportPage(r, info))
}

// reportPage is the view the template renders: every text is ready to show.
type reportPage struct {
	Name, Source, State, Created, Generated, Zone string
	States                                        []stateView
	KPIs                                          []kpi
	Throughput, Latency, TTFT, Models, Errors     chartView
	ModelRows                                     []modelRow
	ModelTotal                                    modelRow
	ClassRows                                     []classRow
	Slowest                                       []slowRow
	Failed                                        []failedRow
	FailedMore                                    int
	CSS                                           template.CSS
	JS                                            template.JS
}

type stateView struct {
	Name, Count, Width, Color string
}

type kpi struct {
	Label, Value, Note, Tone string
}

// chartView is a chart with its caption, or, when there is nothing to draw,
// Empty saying why.
type chartView struct {
	SVG       template.HTML
	Sub       string
	Empty     string
	Legend    []legendItem
	Footnotes []string
}

type legendItem struct{ Name, Color, Value string }

type modelRow struct {
	Model, Results, Prompt, Cached, Completion, Reasoning, Total, Cost string
}

type classRow struct{ Class, Color, Count, Example string }

type slowRow struct {
	Rank, CustomID, Model, Latency, TTFT, Tokens, Attempts string
}

type failedRow struct {
	CustomID, Model, Class, Color, Status, Attempts, Message, FullMessage string
}

// Colours of the charts: one accent, a teal for streams, and one colour
// per error class and request state.
const (
	colorAccent    = "#4263eb"
	colorStream    = "#0c8599"
	colorPrompt    = "#4263eb"
	colorCached    = "#a5b4fc"
	colorAnswer    = "#12b886"
	colorReasoning = "#96f2d7"
)

var stateColors = map[jobs.Status]string{
	jobs.StatusPending: "#ced4da", jobs.StatusRunning: "#74c0fc", jobs.StatusSucceeded: "#12b886",
	jobs.StatusFailed: "#e03131", jobs.StatusCancelled: "#868e96",
}

var classColors = map[jobs.ErrorClass]string{
	jobs.ClassRateLimited: "#f59f00", jobs.ClassServer: "#e8590c", jobs.ClassTimeout: "#7048e8",
	jobs.ClassNetwork: "#495057", jobs.ClassBadResponse: "#0c8599", jobs.ClassInvalidRequest: "#c2255c",
	jobs.ClassAuth: "#212529", jobs.ClassPayment: "#5c940d", jobs.ClassInvalidInput: "#a61e4d",
}

// otherColors colour the classes a newer version may add.
var otherColors = []string{"#1971c2", "#9c36b5", "#2b8a3e", "#e67700"}

func classColor(c jobs.ErrorClass) string {
	if col, ok := classColors[c]; ok {
		return col
	}
	sum := 0
	for _, b := range []byte(c) {
		sum += int(b)
	}
	return otherColors[sum%len(otherColors)]
}

func newReportPage(r jobs.Report, info ReportInfo) reportPage {
	s := r.Stats
	pg := reportPage{
		Name: s.Job.Name, Source: s.Job.Source, State: string(s.Job.State),
		Created: localTime(s.Job.CreatedAt, info.Location), Generated: localTime(info.Generated, info.Location),
		Zone: zoneName(info.Generated, info.Location),
		CSS:  template.CSS(reportCSS), JS: template.JS(reportJS),
	}
	pg.States = stateViews(s)
	pg.KPIs = kpis(r, info.Prices)
	pg.Throughput = throughputView(r, info.Location)
	pg.Latency = histView("chart-latency", "Latency of each request", r.Latency, colorAccent,
		"no results yet")
	pg.TTFT = histView("chart-ttft", "Time to first token of streamed requests", r.TTFT, colorStream,
		"no streamed requests: time to first token is measured only for streams (run with --stream, or \"stream\": true in a line)")
	pg.Models, pg.ModelRows, pg.ModelTotal = modelsView(s, info.Prices)
	pg.Errors, pg.ClassRows = errorsView(r, info.Location)
	pg.Slowest = slowRows(r.Slowest)
	pg.Failed, pg.FailedMore = failedRows(r)
	return pg
}

func localTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "–"
	}
	return t.In(loc).Format("2006-01-02 15:04:05")
}

func zoneName(t time.Time, loc *time.Location) string {
	name, off := t.In(loc).Zone()
	return fmt.Sprintf("%s (UTC%+03d:%02d)", name, off/3600, abs(off%3600)/60)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func stateViews(s jobs.Stats) []stateView {
	t := total(s)
	var list []stateView
	for _, st := range jobs.Statuses {
		n := s.Counts[st]
		w := 0.0
		if t > 0 {
			w = 100 * float64(n) / float64(t)
		}
		list = append(list, stateView{Name: string(st), Count: groupDigits(int64(n)),
			Width: fmt.Sprintf("%.3f%%", w), Color: stateColors[st]})
	}
	return list
}

func throughputView(r jobs.Report, loc *time.Location) chartView {
	done := 0
	peak := 0
	for _, c := range r.Completed {
		done += c
		peak = max(peak, c)
	}
	if done == 0 {
		return chartView{Empty: "no completed requests yet"}
	}
	start := r.BucketStart.In(loc)
	return chartView{
		SVG: timeChart("chart-throughput", "Completed requests over time", start, r.Bucket,
			[]series{{name: "completed", color: colorAccent, counts: r.Completed}}, "request"),
		Sub: fmt.Sprintf("Completed requests per %s, by the time their answer arrived · peak %s per %s · mean %s",
			shortDuration(r.Bucket), groupDigits(int64(peak)), shortDuration(r.Bucket), rate(done, r.End.Sub(r.Start))),
	}
}

func histView(id, label string, h jobs.Histogram, color, empty string) chartView {
	if h.Count == 0 {
		return chartView{Empty: empty}
	}
	v := chartView{
		SVG: histChart(id, label, h, color),
		Sub: fmt.Sprintf("%s · p50 %s · p95 %s · p99 %s · max %s", countOf(int64(h.Count), "request"),
			shortDuration(h.P50), shortDuration(h.P95), shortDuration(h.P99), shortDuration(h.Max)),
	}
	if last := h.Bins[len(h.Bins)-1]; last.Overflow {
		v.Footnotes = []string{fmt.Sprintf("The pale last bar gathers the outliers from %s to %s (at most 1%% of the requests), so that they do not squash the rest.",
			shortDuration(last.Lo), shortDuration(last.Hi))}
	}
	return v
}

func slowRows(list []jobs.SlowRequest) []slowRow {
	rows := make([]slowRow, 0, len(list))
	for i, r := range list {
		tokens := "unknown"
		if r.Usage.Known {
			tokens = groupDigits(r.Usage.TotalTokens)
		}
		rows = append(rows, slowRow{Rank: fmt.Sprint(i + 1), CustomID: r.CustomID, Model: r.Model,
			Latency: shortDuration(r.Latency), TTFT: durationOrDash(r.TTFT), Tokens: tokens,
			Attempts: fmt.Sprint(r.Attempts)})
	}
	return rows
}

// maxMessage is how much of an error message a table cell shows; the whole
// message is in the cell's tooltip.
const maxMessage = 300

func failedRows(r jobs.Report) ([]failedRow, int) {
	rows := make([]failedRow, 0, len(r.Failed))
	for _, f := range r.Failed {
		status := "–"
		if f.Failure.StatusCode != 0 {
			status = fmt.Sprint(f.Failure.StatusCode)
		}
		rows = append(rows, failedRow{CustomID: f.CustomID, Model: f.Model, Class: string(f.Failure.Class),
			Color: classColor(f.Failure.Class), Status: status, Attempts: fmt.Sprint(f.Attempts),
			Message: clip(f.Failure.Message, maxMessage), FullMessage: f.Failure.Message})
	}
	return rows, r.FailedTotal - len(r.Failed)
}
