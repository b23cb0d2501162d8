package output

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/jobs"
)

// maxExample is how many characters of an error's example message the
// status table shows.
const maxExample = 120

// WriteStatus writes the human status report of one job: what the job is,
// whether a run is live and how the last one ended, its requests by status
// (running split into calls in flight and requests claimed but not sent)
// and how many are done, tokens (unknown when no response reported usage;
// a lower bound when some did not) and their cost at prices ("unknown" for
// a model without a price), attempts, latency and time to first token,
// throughput over the last minute and five minutes, the ETA (only while a
// run is live), the live run's pacing and pauses, a table of tokens and
// cost per model, and a table of error classes with one example message
// each, cut to about 120 characters.
func WriteStatus(w io.Writer, s jobs.Stats, prices jobs.Prices) error {
	ew := &errWriter{w: w}
	tw := newTable(ew)
	row(tw, "job", s.Job.Name)
	row(tw, "state", string(s.Job.State))
	row(tw, "source", s.Job.Source)
	row(tw, "created", formatTime(s.Job.CreatedAt))
	writeRunRows(tw, s)
	for _, st := range jobs.Statuses {
		if st == jobs.StatusRunning {
			row(tw, string(st), runningText(s))
			continue
		}
		row(tw, string(st), fmt.Sprint(s.Counts[st]))
	}
	row(tw, "done", doneText(s))
	row(tw, "tokens", tokensText(s.Usage, s.ResultsWithoutUsage))
	row(tw, "cost", costText(s, prices))
	row(tw, "attempts", fmt.Sprint(s.Attempts))
	if s.Cached > 0 {
		row(tw, "cached", fmt.Sprintf("%d (answered from earlier identical requests; no call, no tokens)", s.Cached))
	}
	row(tw, "latency", percentilesText(s.LatencyP50, s.LatencyP95, s.LatencyP99))
	row(tw, "ttft", percentilesText(s.TTFTP50, s.TTFTP95, s.TTFTP99))
	writeActivity(tw, s)
	writeRun(tw, s.Run)
	writeModels(tw, s.Models, prices)
	writeErrors(tw, s.Errors)
	if err := tw.Flush(); err != nil {
		return err
	}
	WriteBatches(ew, s.Batches)
	return ew.err
}

func writeErrors(tw *tabwriter.Writer, errs []jobs.ClassCount) {
	if len(errs) == 0 {
		row(tw, "errors", "none")
		return
	}
	fmt.Fprintln(tw)
	row(tw, "ERROR CLASS", "COUNT", "EXAMPLE")
	for _, c := range errs {
		row(tw, string(c.Class), fmt.Sprint(c.Count), truncate(c.Example, maxExample))
	}
}

func percentilesText(p50, p95, p99 time.Duration) string {
	return fmt.Sprintf("p50 %s, p95 %s, p99 %s", formatLatency(p50), formatLatency(p95), formatLatency(p99))
}

// total is the job's request count, or the sum of the counts when the job
// does not say.
func total(s jobs.Stats) int {
	if s.Job.Total > 0 {
		return s.Job.Total
	}
	n := 0
	for _, c := range s.Counts {
		n += c
	}
	return n
}

func doneText(s jobs.Stats) string {
	done := 0
	for st, c := range s.Counts {
		if st.Final() {
			done += c
		}
	}
	t := total(s)
	if t == 0 {
		return "0/0"
	}
	return fmt.Sprintf("%d/%d (%.1f%%)", done, t, 100*float64(done)/float64(t))
}

// tokensText is the usage; without counts the results that reported none,
// which make the figures a lower bound.
func tokensText(u jobs.Usage, without int) string {
	note := ""
	if without > 0 {
		note = fmt.Sprintf(" (%s reported no usage)", Plural(without, "result"))
	}
	if !u.Known && u.TotalTokens == 0 {
		return "unknown" + note
	}
	s := fmt.Sprintf("prompt %d, completion %d, reasoning %d, cached %d, total %d",
		u.PromptTokens, u.CompletionTokens, u.ReasoningTokens, u.CachedTokens, u.TotalTokens)
	if without > 0 {
		s = "at least " + s
	}
	return s + note
}

// formatLatency rounds d to milliseconds; "-" means no result yet.
func formatLatency(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(time.Millisecond).String()
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// truncate cuts s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}
