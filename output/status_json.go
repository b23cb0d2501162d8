package output

import (
	"encoding/json"
	"io"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// StatusJSON is the schema of WriteStatusJSON, documented member by member
// in docs/status.md ("status --json schema"). Members are only ever added, never
// renamed, removed or given another type or unit. Every member is always
// present: counts has every status (zero when none), errors, models and
// cost.unpriced_models are arrays (empty when none), durations are in whole
// milliseconds (0 when there is no result yet), rates are per second
// rounded to three decimals, times are RFC 3339 in UTC ("" when there is
// none). usage.known is false when no response reported usage; the token
// counts are then 0, not measured. results_without_usage (top level and
// per model) counts the results whose answer reported no usage: when it is
// not 0, the usage and the cost leave those results out and are lower
// bounds. A cost is null when it is unknown (no price, or no usage
// reported). eta.state is "no_run" when requests are left but no run is
// live: no time is estimated then. run_live says whether a run is working
// the job (it saved its state in the last few seconds); run is its pacing,
// null without one; last_run is how the last run ended. runners lists the
// runs working a job that several share (PostgreSQL; empty elsewhere).
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
	Usage StatusJSONUsage `json:"usage"`
	// ResultsWithoutUsage counts the results (not from the cache) that
	// reported no usage.
	ResultsWithoutUsage int `json:"results_without_usage"`
	// Models splits usage and cost by requested model, in name order.
	Models []StatusJSONModel `json:"models"`
	Cost   StatusJSONCost    `json:"cost"`
	// Attempts counts HTTP attempts; Cached the requests answered from the
	// cache.
	Attempts  int                 `json:"attempts"`
	Cached    int                 `json:"cached"`
	Errors    []StatusJSONError   `json:"errors"`
	LatencyMS StatusJSONQuantiles `json:"latency_ms"`
	// TTFTMS is the time to first token of streamed results (0 when none).
	TTFTMS     StatusJSONQuantiles  `json:"ttft_ms"`
	Throughput StatusJSONThroughput `json:"throughput"`
	ETA        StatusJSONETA        `json:"eta"`
	// RunLive says whether a run is working the job now.
	RunLive bool `json:"run_live"`
	// LastRun is how the last run ended.
	LastRun StatusJSONLastRun `json:"last_run"`
	// Run is the pacing of the live run working the job, or nil.
	Run *StatusJSONRun `json:"run"`
	// InBatches counts the running requests in open provider batches;
	// Batches lists the job's provider batches (--mode batch), oldest first.
	InBatches int               `json:"in_batches"`
	Batches   []StatusJSONBatch `json:"batches"`
	// Runners are the live runs of a job several runs share, oldest first
	// (WriteStatusJSONRunners).
	Runners []StatusJSONRunner `json:"runners"`
}

// StatusJSONBatch is one of the job's provider batches.
type StatusJSONBatch struct {
	ID             int64            `json:"id"`
	State          string           `json:"state"`
	ProviderStatus string           `json:"provider_status"`
	Endpoint       string           `json:"endpoint"`
	Model          string           `json:"model"`
	Requests       int              `json:"requests"`
	Bytes          int64            `json:"bytes"`
	BatchID        string           `json:"batch_id"`
	InputFileID    string           `json:"input_file_id"`
	OutputFileID   string           `json:"output_file_id"`
	ErrorFileID    string           `json:"error_file_id"`
	Counts         jobs.BatchCounts `json:"request_counts"`
	Message        string           `json:"message"`
	Left           int              `json:"left"`
	CreatedAt      string           `json:"created_at"`
	UpdatedAt      string           `json:"updated_at"`
}

func batchesJSON(bs []jobs.ProviderBatch) []StatusJSONBatch {
	out := make([]StatusJSONBatch, 0, len(bs))
	for _, b := range bs {
		out = append(out, StatusJSONBatch{ID: b.ID, State: string(b.State), ProviderStatus: b.ProviderStatus,
			Endpoint: string(b.Endpoint), Model: b.Model, Requests: b.Requests, Bytes: b.Bytes, BatchID: b.BatchID,
			InputFileID: b.InputFileID, OutputFileID: b.OutputFileID, ErrorFileID: b.ErrorFileID, Counts: b.Counts,
			Message: b.Message, Left: b.Left, CreatedAt: formatTime(b.CreatedAt), UpdatedAt: formatTime(b.UpdatedAt)})
	}
	return out
}

// StatusJSONUsage is a token count: the job's or one model's.
type StatusJSONUsage struct {
	Known            bool  `json:"known"`
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	ReasoningTokens  int64 `json:"reasoning_tokens"`
	CachedTokens     int64 `json:"cached_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// StatusJSONModel is one requested model: its results (not counting
// those copied from the cache), their usage, its cost, null when unknown,
// and how many of the results reported no usage (usage and cost are then
// lower bounds).
type StatusJSONModel struct {
	Model               string          `json:"model"`
	Results             int             `json:"results"`
	Usage               StatusJSONUsage `json:"usage"`
	Cost                *float64        `json:"cost"`
	ResultsWithoutUsage int             `json:"results_without_usage"`
}

// StatusJSONCost is the job's cost in Currency (the label of --currency or
// the prices file, "" when none): Total is null unless every model's cost
// is known; UnpricedModels lists those whose cost is unknown.
type StatusJSONCost struct {
	Currency       string   `json:"currency"`
	Total          *float64 `json:"total"`
	UnpricedModels []string `json:"unpriced_models"`
}

// StatusJSONQuantiles are nearest-rank percentiles in milliseconds.
type StatusJSONQuantiles struct {
	P50 int64 `json:"p50"`
	P95 int64 `json:"p95"`
	P99 int64 `json:"p99"`
}

// StatusJSONThroughput is the throughput of the windows ending At, and of
// the job's whole active span.
type StatusJSONThroughput struct {
	At      string            `json:"at"`
	Last1m  StatusJSONWindow  `json:"last_1m"`
	Last5m  StatusJSONWindow  `json:"last_5m"`
	Overall StatusJSONOverall `json:"overall"`
}

// StatusJSONWindow is one throughput window (see jobs.Throughput):
// requests completed (succeeded or failed for good) by the end of their
// last attempt, the tokens of those that succeeded, and the rates over
// span_ms; idle (rates 0) when nothing completed.
type StatusJSONWindow struct {
	WindowMS          int64   `json:"window_ms"`
	SpanMS            int64   `json:"span_ms"`
	Idle              bool    `json:"idle"`
	Requests          int     `json:"requests"`
	Tokens            int64   `json:"tokens"`
	TokensKnown       bool    `json:"tokens_known"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	TokensPerSecond   float64 `json:"tokens_per_second"`
}

// StatusJSONOverall is the throughput from the start of the first
// attempt to the end of the last, pauses between runs included.
type StatusJSONOverall struct {
	FirstAttemptAt string `json:"first_attempt_at"`
	LastAttemptAt  string `json:"last_attempt_at"`
	StatusJSONWindow
}

// StatusJSONETA is jobs.ETA: state "done", "unknown" or "estimated", or
// "no_run" when no run is live; remaining counts pending and running
// requests; seconds is the estimate (0 unless estimated).
type StatusJSONETA struct {
	State     string `json:"state"`
	Remaining int    `json:"remaining"`
	Seconds   int64  `json:"seconds"`
}

// StatusJSONError is one error class in StatusJSON, with its whole example
// message.
type StatusJSONError struct {
	Class   string `json:"class"`
	Count   int    `json:"count"`
	Example string `json:"example"`
}

// NewStatusJSON fills the StatusJSON schema from s, costing its usage at
// prices.
func NewStatusJSON(s jobs.Stats, prices jobs.Prices) StatusJSON {
	var v StatusJSON
	v.Job.Name, v.Job.State, v.Job.Source = s.Job.Name, string(s.Job.State), s.Job.Source
	v.Job.Total = total(s)
	if !s.Job.CreatedAt.IsZero() {
		v.Job.CreatedAt = s.Job.CreatedAt.UTC().Format(time.RFC3339)
	}
	c := &v.Counts
	c.Pending, c.Running = s.Counts[jobs.StatusPending], s.Counts[jobs.StatusRunning]
	c.Succeeded, c.Failed = s.Counts[jobs.StatusSucceeded], s.Counts[jobs.StatusFailed]
	c.Cancelled = s.Counts[jobs.StatusCancelled]
	v.Usage, v.ResultsWithoutUsage = newStatusJSONUsage(s.Usage), s.ResultsWithoutUsage
	v.InBatches, v.Batches = s.InBatches, batchesJSON(s.Batches)
	v.Runners = []StatusJSONRunner{}
	v.Models = make([]StatusJSONModel, 0, len(s.Models))
	for _, m := range s.Models {
		cost, ok := prices.ModelCost(m)
		v.Models = append(v.Models, StatusJSONModel{Model: m.Model, Results: m.Results,
			Usage: newStatusJSONUsage(m.Usage), Cost: costPtr(cost, ok), ResultsWithoutUsage: m.WithoutUsage})
	}
	jc := costOf(s, prices)
	v.Cost = StatusJSONCost{Currency: prices.Currency, Total: costPtr(jc.Total, jc.Known), UnpricedModels: jc.Unpriced}
	v.Attempts, v.Cached = s.Attempts, s.Cached
	v.Errors = make([]StatusJSONError, 0, len(s.Errors))
	for _, e := range s.Errors {
		v.Errors = append(v.Errors, StatusJSONError{Class: string(e.Class), Count: e.Count, Example: e.Example})
	}
	v.LatencyMS = StatusJSONQuantiles{s.LatencyP50.Milliseconds(), s.LatencyP95.Milliseconds(), s.LatencyP99.Milliseconds()}
	v.TTFTMS = StatusJSONQuantiles{s.TTFTP50.Milliseconds(), s.TTFTP95.Milliseconds(), s.TTFTP99.Milliseconds()}
	v.Throughput = StatusJSONThroughput{At: utcTime(s.At), Last1m: newStatusJSONWindow(s.Last1m),
		Last5m: newStatusJSONWindow(s.Last5m), Overall: StatusJSONOverall{FirstAttemptAt: utcTime(s.FirstAttempt),
			LastAttemptAt: utcTime(s.LastAttempt), StatusJSONWindow: newStatusJSONWindow(s.Overall())}}
	e := s.ETA()
	v.ETA = StatusJSONETA{State: etaState(s, e), Remaining: e.Remaining}
	if s.Run != nil {
		v.ETA.Seconds = int64(e.Left / time.Second)
	}
	v.RunLive, v.LastRun, v.Run = s.Run != nil, newStatusJSONLastRun(s), newStatusJSONRun(s)
	return v
}

func newStatusJSONUsage(u jobs.Usage) StatusJSONUsage {
	return StatusJSONUsage{Known: u.Known, PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
		ReasoningTokens: u.ReasoningTokens, CachedTokens: u.CachedTokens, TotalTokens: u.TotalTokens}
}

func newStatusJSONWindow(t jobs.Throughput) StatusJSONWindow {
	return StatusJSONWindow{WindowMS: t.Window.Milliseconds(), SpanMS: t.Span.Milliseconds(), Idle: t.Idle(),
		Requests: t.Requests, Tokens: t.Tokens, TokensKnown: t.TokensKnown,
		RequestsPerSecond: round3(t.RequestsPerSecond()), TokensPerSecond: round3(t.TokensPerSecond())}
}

func costPtr(v float64, known bool) *float64 {
	if !known {
		return nil
	}
	v = roundCost(v)
	return &v
}

// utcTime is t in RFC 3339 in UTC with milliseconds, "" for the zero time.
func utcTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(millisRFC3339)
}

// WriteStatusJSON writes the status of one job as one indented JSON object
// in the StatusJSON schema, followed by a line break.
func WriteStatusJSON(w io.Writer, s jobs.Stats, prices jobs.Prices) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(NewStatusJSON(s, prices))
}
