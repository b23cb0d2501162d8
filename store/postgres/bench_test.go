package postgres

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// t0 is when the benchmarks claim and record.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// benchBody is a chat body of about 300 bytes, the size of a typical line
// (store/sqlite's benchmarks use the same).
func benchBody(n int) []byte {
	b := fmt.Sprintf(`{"model":"deepseek/deepseek-v3","messages":[{"role":"system","content":"You are a concise assistant."},`+
		`{"role":"user","content":"Question %d: summarise the following paragraph in one sentence. %%s"}],`+
		`"temperature":0.7,"max_tokens":512}`, n)
	return []byte(fmt.Sprintf(b, strings.Repeat("x", max(0, 300-len(b)+2))))
}

func benchRequests(n int) []jobs.Request {
	reqs := make([]jobs.Request, n)
	for i := range reqs {
		reqs[i] = jobs.Request{Line: i + 1, CustomID: fmt.Sprintf("req-%d", i+1), Endpoint: jobs.EndpointChat,
			Model: "deepseek/deepseek-v3", Body: benchBody(i + 1), CacheKey: fmt.Sprintf("%064x", i*7919)}
	}
	return reqs
}

// sliceSource is a jobs.RequestSource over a slice.
type sliceSource struct {
	reqs     []jobs.Request
	next     int
	rejected []jobs.LineError
}

func (s *sliceSource) Next() (jobs.Request, error) {
	if s.next >= len(s.reqs) {
		return jobs.Request{}, io.EOF
	}
	s.next++
	return s.reqs[s.next-1], nil
}

func (s *sliceSource) Reject(line int, reason string) {
	s.rejected = append(s.rejected, jobs.LineError{File: "bench.jsonl", Line: line, Reason: reason})
}

func (s *sliceSource) Err() error {
	if len(s.rejected) == 0 {
		return nil
	}
	v := &jobs.ValidationError{}
	for _, e := range s.rejected {
		v.Add(e)
	}
	return v
}

// BenchmarkImport imports a 50,000-line file per iteration, in one
// transaction as the import command does.
func BenchmarkImport(b *testing.B) {
	const lines = 50_000
	s := mustOpen(b)
	reqs := benchRequests(lines)
	b.SetBytes(int64(lines * len(reqs[0].Body)))
	i := 0
	for b.Loop() {
		i++
		job, err := s.Import(context.Background(), jobs.Job{Name: fmt.Sprintf("bench-%d", i), Source: "bench.jsonl",
			Fingerprint: "fp"}, &sliceSource{reqs: reqs})
		if err != nil || job.Total != lines {
			b.Fatalf("Import = %d requests, %v; want %d", job.Total, err, lines)
		}
	}
	b.ReportMetric(float64(i*lines)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkClaimRecord claims 64 requests and records their successes in
// one Record, as a run's dispatcher and writer do; a drained job is
// replaced by a fresh one outside the timer.
func BenchmarkClaimRecord(b *testing.B) {
	const batch, pool = 64, 64 * 200
	ctx := context.Background()
	s := mustOpen(b)
	reqs := benchRequests(pool)
	raw := []byte(`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",` +
		`"content":"` + strings.Repeat("y", 400) + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":60,` +
		`"completion_tokens":100,"total_tokens":160}}`)
	var job jobs.Job
	jobsMade, done := 0, 0
	for b.Loop() {
		got, err := s.Claim(ctx, job.ID, batch, t0)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			b.StopTimer()
			jobsMade++
			job, err = s.Import(ctx, jobs.Job{Name: fmt.Sprintf("claim-%d", jobsMade), Source: "bench.jsonl"},
				&sliceSource{reqs: reqs})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			continue
		}
		outs := make([]jobs.Outcome, len(got))
		for i, r := range got {
			outs[i] = jobs.Outcome{Request: r, Next: jobs.StatusSucceeded, CountAttempt: true,
				Attempt: &jobs.Attempt{RequestID: r.ID, Number: 1, StartedAt: t0, Duration: time.Second, StatusCode: 200},
				Result: &jobs.Result{RequestID: r.ID, StatusCode: 200, Raw: raw, Content: "ok", Latency: time.Second,
					Usage: jobs.Usage{Known: true, PromptTokens: 60, CompletionTokens: 100, TotalTokens: 160}, CreatedAt: t0}}
		}
		if err := s.Record(ctx, outs); err != nil {
			b.Fatal(err)
		}
		done += len(got)
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "requests/s")
}
