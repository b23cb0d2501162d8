package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/jobs"
)

// maxExample is how many characters of an error's example message the
// status table shows.
const maxExample = 120

// WriteStatus writes the human status report of one job: what the job is,
// its requests by status and how many are done, tokens (unknown when no
// response reported usage), attempts, latency, and a table of error classes
// with one example message each, cut to about 120 characters.
func WriteStatus(w io.Writer, s jobs.Stats) error {
	ew := &errWriter{w: w}
	tw := newTable(ew)
	row(tw, "job", s.Job.Name)
	row(tw, "state", string(s.Job.State))
	row(tw, "source", s.Job.Source)
	row(tw, "created", formatTime(s.Job.CreatedAt))
	for _, st := range jobs.Statuses {
		row(tw, string(st), fmt.Sprint(s.Counts[st]))
	}
	row(tw, "done", doneText(s))
	row(tw, "tokens", tokensText(s.Usage))
	row(tw, "attempts", fmt.Sprint(s.Attempts))
	if s.Cached > 0 {
		row(tw, "cached", fmt.Sprintf("%d (answered from earlier identical requests; no call, no tokens)", s.Cached))
	}
	row(tw, "latency", fmt.Sprintf("p50 %s, p95 %s", formatLatency(s.LatencyP50), formatLatency(s.LatencyP95)))
	row(tw, "ttft", fmt.Sprintf("p50 %s, p95 %s", formatLatency(s.TTFTP50), formatLatency(s.TTFTP95)))
	writeRun(tw, s.Run)
	if len(s.Errors) == 0 {
		row(tw, "errors", "none")
	} else {
		fmt.Fprintln(tw)
		row(tw, "ERROR CLASS", "COUNT", "EXAMPLE")
		for _, c := range s.Errors {
			row(tw, string(c.Class), fmt.Sprint(c.Count), truncate(c.Example, maxExample))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return ew.err
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

func tokensText(u jobs.Usage) string {
	if !u.Known && u.TotalTokens == 0 {
		return "unknown"
	}
	return fmt.Sprintf("prompt %d, completion %d, reasoning %d, cached %d, total %d",
		u.PromptTokens, u.CompletionTokens, u.ReasoningTokens, u.CachedTokens, u.TotalTokens)
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

// StatusJSON is the schema of WriteStatusJSON. Every member is always
// present: counts has every status (zero when none), errors is an array
// (empty when none), latency_ms is in whole milliseconds (0 when there is
// no result yet), created_at is RFC 3339. usage.known is false when no
// response reported usage; the token counts are then 0, not measured.
//
//	{
//	  "job": {"name": "...", "state": "active", "source": "...", "created_at": "2025-01-02T03:04:05Z", "total": 100},
//	  "counts": {"pending": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0},
//	  "usage": {"known": true, "prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0, "cached_tokens": 0, "total_tokens": 0},
//	  "attempts": 0,
//	  "cached": 0,
//	  "errors": [{"class": "rate_limited", "count": 3, "example": "..."}],
//	  "latency_ms": {"p50": 0, "p95": 0},
//	  "run": null
//	}
//
// run is null unless a live run is working the job; then it is a
// StatusJSONRun.
type StatusJSON struct {
	Job struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		Source    string `json:"source"`
		CreatedAt string `json:"created_at"`
		Total     int    `json:"total"`
	} `json:"job"`
	Counts struct {
		Pending   int `json:"pending"`
		Running   int `json:"running"`
		Succeeded int `json:"succeeded"`
		Failed    int `json:"failed"`
		Cancelled int `json:"cancelled"`
	} `json:"counts"`
	Usage struct {
		Known            bool  `json:"known"`
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
		ReasoningTokens  int64 `json:"reasoning_tokens"`
		CachedTokens     int64 `json:"cached_tokens"`
		TotalTokens      int64 `json:"total_tokens"`
	} `json:"usage"`
	Attempts  int               `json:"attempts"`
	Cached    int               `json:"cached"` // requests answered from the cache
	Errors    []StatusJSONError `json:"errors"`
	LatencyMS struct {
		P50 int64 `json:"p50"`
		P95 int64 `json:"p95"`
	} `json:"latency_ms"`
	// TTFTMS is the time to first token of streamed results (0 when none).
	TTFTMS struct {
		P50 int64 `json:"p50"`
		P95 int64 `json:"p95"`
	} `json:"ttft_ms"`
	// Run is the pacing of the live run working the job, or nil.
	Run *StatusJSONRun `json:"run"`
}

// StatusJSONError is one error class in StatusJSON, with its whole example
// message.
type StatusJSONError struct {
	Class   string `json:"class"`
	Count   int    `json:"count"`
	Example string `json:"example"`
}

// NewStatusJSON fills the StatusJSON schema from s.
func NewStatusJSON(s jobs.Stats) StatusJSON {
	var v StatusJSON
	v.Job.Name, v.Job.State, v.Job.Source = s.Job.Name, string(s.Job.State), s.Job.Source
	v.Job.Total = total(s)
	if !s.Job.CreatedAt.IsZero() {
		v.Job.CreatedAt = s.Job.CreatedAt.Format(time.RFC3339)
	}
	c := &v.Counts
	c.Pending, c.Running = s.Counts[jobs.StatusPending], s.Counts[jobs.StatusRunning]
	c.Succeeded, c.Failed = s.Counts[jobs.StatusSucceeded], s.Counts[jobs.StatusFailed]
	c.Cancelled = s.Counts[jobs.StatusCancelled]
	u := s.Usage
	v.Usage.Known, v.Usage.PromptTokens, v.Usage.CompletionTokens = u.Known, u.PromptTokens, u.CompletionTokens
	v.Usage.ReasoningTokens, v.Usage.CachedTokens, v.Usage.TotalTokens = u.ReasoningTokens, u.CachedTokens, u.TotalTokens
	v.Attempts = s.Attempts
	v.Cached = s.Cached
	v.Errors = make([]StatusJSONError, 0, len(s.Errors))
	for _, e := range s.Errors {
		v.Errors = append(v.Errors, StatusJSONError{Class: string(e.Class), Count: e.Count, Example: e.Example})
	}
	v.LatencyMS.P50, v.LatencyMS.P95 = s.LatencyP50.Milliseconds(), s.LatencyP95.Milliseconds()
	v.TTFTMS.P50, v.TTFTMS.P95 = s.TTFTP50.Milliseconds(), s.TTFTP95.Milliseconds()
	v.Run = newStatusJSONRun(s.Run)
	return v
}

// WriteStatusJSON writes the status of one job as one indented JSON object
// in the StatusJSON schema, followed by a line break.
func WriteStatusJSON(w io.Writer, s jobs.Stats) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(NewStatusJSON(s))
}
