package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

func TestWriteStatusGolden(t *testing.T) {
	for _, tt := range []struct {
		name  string
		known bool
	}{{"UnknownUsage", false}, {"KnownUsage", true}} {
		t.Run(tt.name, func(t *testing.T) {
			file := "status_" + strings.ToLower(strings.TrimSuffix(tt.name, "Usage")) + "_usage"
			var text, js bytes.Buffer
			if err := WriteStatus(&text, fixtureStats(tt.known), jobs.Prices{}); err != nil {
				t.Fatal(err)
			}
			if err := WriteStatusJSON(&js, fixtureStats(tt.known), jobs.Prices{}); err != nil {
				t.Fatal(err)
			}
			golden(t, file+".txt", text.Bytes())
			golden(t, file+".json", js.Bytes())
		})
	}
}

func TestWriteStatusText(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteStatus(&buf, fixtureStats(false), jobs.Prices{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"tokens     unknown\n", "done       872/1000 (87.2%)\n", "cancelled  0\n", "latency    p50 1.235s, p95 8s, p99 -\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "rate_limited") {
			example := line[strings.Index(line, "Rate"):]
			if n := len([]rune(example)); n != maxExample || !strings.HasSuffix(example, "…") {
				t.Errorf("example has %d runes, want it cut to %d with …: %q", n, maxExample, example)
			}
			if strings.ContainsAny(example, "\t\r") {
				t.Errorf("example keeps a tab or line break: %q", example)
			}
		}
	}
}

func TestTokensText(t *testing.T) {
	tests := []struct {
		name    string
		u       jobs.Usage
		without int
		want    string
	}{
		{"Unknown", jobs.Usage{}, 0, "unknown"},
		{"KnownZero", jobs.Usage{Known: true}, 0, "prompt 0, completion 0, reasoning 0, cached 0, total 0"},
		{"UnknownFlagWithTotal", jobs.Usage{TotalTokens: 7, PromptTokens: 7}, 0, "prompt 7, completion 0, reasoning 0, cached 0, total 7"},
		{"NoneReported", jobs.Usage{}, 3, "unknown (3 results reported no usage)"},
		{"OneNotReported", jobs.Usage{Known: true, PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7}, 1,
			"at least prompt 5, completion 2, reasoning 0, cached 0, total 7 (1 result reported no usage)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tokensText(tt.u, tt.without); got != tt.want {
				t.Errorf("tokensText(%+v, %d) = %q, want %q", tt.u, tt.without, got, tt.want)
			}
		})
	}
}

func TestWriteStatusEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteStatus(&buf, jobs.Stats{Job: jobs.Job{Name: "new"}}, jobs.Prices{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"done       0/0\n", "errors     none\n", "latency    p50 -, p95 -, p99 -\n", "created    -\n",
		"rate       last 1m: idle; last 5m: idle\n", "eta        done\n", "cost       unknown (no prices: --price MODEL=IN:OUT[:CACHED] or --prices FILE)\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestWriteStatusJSONShape checks the schema on empty stats: every count
// key present, errors an empty array, not null.
func TestWriteStatusJSONShape(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteStatusJSON(&buf, jobs.Stats{Job: jobs.Job{Name: "new"}}, jobs.Prices{}); err != nil {
		t.Fatal(err)
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if got, want := objectKeys(t, buf.Bytes()), []string{"job", "counts", "usage", "results_without_usage", "models", "cost", "attempts",
		"cached", "errors", "latency_ms", "ttft_ms", "throughput", "eta", "run_live", "last_run", "run", "in_batches", "batches", "runners"}; !equal(got, want) {
		t.Errorf("keys %q, want %q", got, want)
	}
	var counts []string
	for _, s := range jobs.Statuses {
		counts = append(counts, string(s))
	}
	if got := objectKeys(t, v["counts"]); !equal(got, counts) {
		t.Errorf("counts keys %q, want %q", got, counts)
	}
	if got := string(v["run"]); got != "null" {
		t.Errorf("run = %s without a live run, want null", got)
	}
	if got, want := compact(t, string(v["last_run"])), `{"end":"","at":"","message":""}`; got != want {
		t.Errorf("last_run = %s, want %s", got, want)
	}
	for _, key := range []string{"errors", "models"} {
		if got := string(v[key]); got != "[]" {
			t.Errorf("%s = %s, want []", key, got)
		}
	}
	if got, want := string(v["cost"]), `{"currency":"","total":null,"unpriced_models":[]}`; compact(t, got) != want {
		t.Errorf("cost = %s, want %s", got, want)
	}
	if got, want := string(v["eta"]), `{"state":"done","remaining":0,"seconds":0}`; compact(t, got) != want {
		t.Errorf("eta = %s, want %s", got, want)
	}
	if got, want := objectKeys(t, v["job"]), []string{"name", "state", "source", "created_at", "total"}; !equal(got, want) {
		t.Errorf("job keys %q, want %q", got, want)
	}
}

func TestWriteStatusJSONFullExample(t *testing.T) {
	var buf bytes.Buffer
	s := fixtureStats(true)
	if err := WriteStatusJSON(&buf, s, jobs.Prices{}); err != nil {
		t.Fatal(err)
	}
	var v StatusJSON
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if got := v.Errors[0].Example; got != s.Errors[0].Example {
		t.Errorf("JSON example = %q, want the whole message %q", got, s.Errors[0].Example)
	}
	if v.LatencyMS.P50 != 1234 || v.Job.CreatedAt != "2025-01-02T03:04:05Z" {
		t.Errorf("latency_ms.p50 = %d, created_at = %q", v.LatencyMS.P50, v.Job.CreatedAt)
	}
}

func TestWriteJobsGolden(t *testing.T) {
	list := []jobs.JobSummary{
		{Job: jobs.Job{Name: "eval-2025", State: jobs.JobActive, CreatedAt: fixtureCreated, Total: 1000},
			Counts: fixtureStats(false).Counts},
		{Job: jobs.Job{Name: "old\tsummaries", State: jobs.JobCancelled, CreatedAt: fixtureCreated.Add(-48 * time.Hour), Total: 25},
			Counts: map[jobs.Status]int{jobs.StatusSucceeded: 20, jobs.StatusCancelled: 5}},
		{Job: jobs.Job{Name: "empty", State: jobs.JobActive, CreatedAt: fixtureCreated.Add(time.Hour)}},
	}
	var buf bytes.Buffer
	if err := WriteJobs(&buf, list); err != nil {
		t.Fatal(err)
	}
	golden(t, "jobs.txt", buf.Bytes())

	buf.Reset()
	if err := WriteJobs(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); !strings.HasPrefix(got, "NAME") || strings.Count(got, "\n") != 1 {
		t.Errorf("no jobs: %q, want the header only", got)
	}
}

func TestViewsWriterError(t *testing.T) {
	if err := WriteStatus(failingWriter{}, fixtureStats(true), jobs.Prices{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteStatus = %v, want disk full", err)
	}
	if err := WriteStatusJSON(failingWriter{}, fixtureStats(true), jobs.Prices{}); err == nil {
		t.Error("WriteStatusJSON = nil, want an error")
	}
	if err := WriteJobs(failingWriter{}, nil); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteJobs = %v, want an error", err)
	}
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// fixtureActivity is fixtureStats with two models, p99s and a live run that
// has been working for two hours: 120 completed in the last minute (1 of
// them failed), 540 in the last five.
func fixtureActivity() jobs.Stats {
	s := fixtureStats(true)
	s.LatencyP99, s.TTFTP99 = 11*time.Second, 3*time.Second
	s.Models = []jobs.ModelUsage{
		{Model: "deepseek/deepseek-r1", Results: 600, Usage: jobs.Usage{Known: true, PromptTokens: 6000, CompletionTokens: 40000,
			ReasoningTokens: 30050, CachedTokens: 4096, TotalTokens: 46000}},
		{Model: "deepseek/deepseek-v3", Results: 250, Usage: jobs.Usage{Known: true, PromptTokens: 4200, CompletionTokens: 8100,
			TotalTokens: 12300}},
	}
	s.At = fixtureCreated.Add(2 * time.Hour)
	s.FirstAttempt, s.LastAttempt = fixtureCreated.Add(time.Minute), s.At.Add(-500*time.Millisecond)
	s.Last1m = jobs.Throughput{Window: time.Minute, Span: time.Minute, Requests: 120, Tokens: 9000, TokensKnown: true}
	s.Last5m = jobs.Throughput{Window: 5 * time.Minute, Span: 5 * time.Minute, Requests: 540, Tokens: 40000, TokensKnown: true}
	s.Job.Lock, s.Job.LockHeartbeat = jobs.LockOwner{Token: "tok-1", PID: 4242, Host: "host-a"}, s.At.Add(-2*time.Second)
	s.Job.LastEnd, s.Job.LastEndAt, s.Job.LastEndMessage = jobs.EndInterrupted, fixtureCreated.Add(50*time.Second), "interrupted by a signal"
	s.Run = &jobs.RunState{Concurrency: 6, MaxConcurrency: 8, InFlight: 6, UpdatedAt: s.At.Add(-time.Second)}
	return s
}

var fixturePrices = jobs.Prices{Currency: "USD", ByModel: map[string]jobs.Price{
	"deepseek/deepseek-r1": {Input: 0.55, Output: 2.19, Cached: 0.14, HasCached: true},
}}

// TestWriteStatusActivityGolden: rates, active span, ETA, the model table
// and a cost known for one model of two.
func TestWriteStatusActivityGolden(t *testing.T) {
	var text, js bytes.Buffer
	if err := WriteStatus(&text, fixtureActivity(), fixturePrices); err != nil {
		t.Fatal(err)
	}
	if err := WriteStatusJSON(&js, fixtureActivity(), fixturePrices); err != nil {
		t.Fatal(err)
	}
	golden(t, "status_activity.txt", text.Bytes())
	golden(t, "status_activity.json", js.Bytes())
	for _, want := range []string{
		"rate       last 1m: 2.00 req/s, 150.0 tok/s; last 5m: 1.80 req/s, 133.3 tok/s\n",
		"eta        1m11s (128 requests left at 1.80 req/s, the rate of the last 5 minutes)\n",
		"latency    p50 1.235s, p95 8s, p99 11s\n",
		// r1: (6000-4096)·0.55 + 4096·0.14 + 40000·2.19 per million = 0.08922064
		"cost       0.0892 USD + unknown (no price or no usage for deepseek/deepseek-v3)\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, text.String())
		}
	}
	var v StatusJSON
	if err := json.Unmarshal(js.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v.Models[0].Cost == nil || *v.Models[0].Cost != 0.08922064 || v.Models[1].Cost != nil {
		t.Errorf("model costs = %v, %v; want 0.08922064 and null", v.Models[0].Cost, v.Models[1].Cost)
	}
	if v.Cost.Total != nil || !equal(v.Cost.UnpricedModels, []string{"deepseek/deepseek-v3"}) {
		t.Errorf("cost = %+v, want total null with v3 unpriced", v.Cost)
	}
	if v.ETA != (StatusJSONETA{State: "estimated", Remaining: 128, Seconds: 71}) {
		t.Errorf("eta = %+v", v.ETA)
	}
}

func TestCostText(t *testing.T) {
	both := jobs.Prices{Currency: "USD", ByModel: map[string]jobs.Price{
		"deepseek/deepseek-r1": {Input: 1, Output: 2}, "deepseek/deepseek-v3": {Input: 1, Output: 1}}}
	unknownUsage := fixtureActivity()
	unknownUsage.Models[1].Usage = jobs.Usage{}
	tests := []struct {
		name   string
		s      jobs.Stats
		prices jobs.Prices
		want   string
	}{
		{"NoPrices", fixtureActivity(), jobs.Prices{}, "unknown (no prices: --price MODEL=IN:OUT[:CACHED] or --prices FILE)"},
		// (6000+4200)·1 + 40000·2 + 8100·1 per million
		{"AllPriced", fixtureActivity(), both, "0.0983 USD"},
		{"OnePriced", fixtureActivity(), fixturePrices, "0.0892 USD + unknown (no price or no usage for deepseek/deepseek-v3)"},
		{"UsageUnknown", unknownUsage, both, "0.0860 USD + unknown (no price or no usage for deepseek/deepseek-v3)"},
		{"NoResultsPriced", jobs.Stats{}, both, "0.0000 USD"},
		{"NoResultsNoPrices", jobs.Stats{}, jobs.Prices{}, "unknown (no prices: --price MODEL=IN:OUT[:CACHED] or --prices FILE)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := costText(tt.s, tt.prices); got != tt.want {
				t.Errorf("costText = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRateText(t *testing.T) {
	tests := []struct {
		name string
		t    jobs.Throughput
		want string
	}{
		{"Idle", jobs.Throughput{Window: time.Minute}, "idle"},
		{"TokensUnknown", jobs.Throughput{Span: 30 * time.Second, Requests: 15}, "0.50 req/s, tok/s unknown"},
		{"Known", jobs.Throughput{Span: 4 * time.Second, Requests: 10, Tokens: 1000, TokensKnown: true}, "2.50 req/s, 250.0 tok/s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rateText(tt.t); got != tt.want {
				t.Errorf("rateText(%+v) = %q, want %q", tt.t, got, tt.want)
			}
		})
	}
}

func TestPlural(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{{0, "0 requests"}, {1, "1 request"}, {2, "2 requests"}, {-1, "-1 requests"}} {
		if got := Plural(tt.n, "request"); got != tt.want {
			t.Errorf("Plural(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
