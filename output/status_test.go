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
			if err := WriteStatus(&text, fixtureStats(tt.known)); err != nil {
				t.Fatal(err)
			}
			if err := WriteStatusJSON(&js, fixtureStats(tt.known)); err != nil {
				t.Fatal(err)
			}
			golden(t, file+".txt", text.Bytes())
			golden(t, file+".json", js.Bytes())
		})
	}
}

func TestWriteStatusText(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteStatus(&buf, fixtureStats(false)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"tokens     unknown\n", "done       872/1000 (87.2%)\n", "cancelled  0\n", "latency    p50 1.235s, p95 8s\n"} {
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
		name string
		u    jobs.Usage
		want string
	}{
		{"Unknown", jobs.Usage{}, "unknown"},
		{"KnownZero", jobs.Usage{Known: true}, "prompt 0, completion 0, reasoning 0, cached 0, total 0"},
		{"UnknownFlagWithTotal", jobs.Usage{TotalTokens: 7, PromptTokens: 7}, "prompt 7, completion 0, reasoning 0, cached 0, total 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tokensText(tt.u); got != tt.want {
				t.Errorf("tokensText(%+v) = %q, want %q", tt.u, got, tt.want)
			}
		})
	}
}

func TestWriteStatusEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteStatus(&buf, jobs.Stats{Job: jobs.Job{Name: "new"}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"done       0/0\n", "errors     none\n", "latency    p50 -, p95 -\n", "created    -\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestWriteStatusJSONShape checks the schema on empty stats: every count
// key present, errors an empty array, not null.
func TestWriteStatusJSONShape(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteStatusJSON(&buf, jobs.Stats{Job: jobs.Job{Name: "new"}}); err != nil {
		t.Fatal(err)
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if got, want := objectKeys(t, buf.Bytes()), []string{"job", "counts", "usage", "attempts", "cached", "errors", "latency_ms", "ttft_ms", "run"}; !equal(got, want) {
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
	if got := string(v["errors"]); got != "[]" {
		t.Errorf("errors = %s, want []", got)
	}
	if got, want := objectKeys(t, v["job"]), []string{"name", "state", "source", "created_at", "total"}; !equal(got, want) {
		t.Errorf("job keys %q, want %q", got, want)
	}
}

func TestWriteStatusJSONFullExample(t *testing.T) {
	var buf bytes.Buffer
	s := fixtureStats(true)
	if err := WriteStatusJSON(&buf, s); err != nil {
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
	if err := WriteStatus(failingWriter{}, fixtureStats(true)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteStatus = %v, want disk full", err)
	}
	if err := WriteStatusJSON(failingWriter{}, fixtureStats(true)); err == nil {
		t.Error("WriteStatusJSON = nil, want an error")
	}
	if err := WriteJobs(failingWriter{}, nil); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteJobs = %v, want an error", err)
	}
}
