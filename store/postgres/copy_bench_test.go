package postgres

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// copyBenchN is the size of the job BenchmarkCopy copies.
const copyBenchN = 100_000

// BenchmarkCopy copies a job of copyBenchN requests from SQLite to
// PostgreSQL and back, each way as `llmbatch copy` does (jobs.Copy). The
// job is what a run leaves: every request answered (an answer of about
// 800 bytes, streamed), one in ten after a 429 (two attempts), one in
// twenty failed for good. It reports requests and rows (requests, attempts
// and results) a second. Figures go in BENCHMARKS.md.
func BenchmarkCopy(b *testing.B) {
	lite, pg := openSQLite(b), mustOpen(b)
	job := benchRunJob(b, lite)
	rows := 0
	b.Run("SQLiteToPostgreSQL", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_, n := benchCopy(b, lite, pg, job, fmt.Sprintf("to-%d", i))
			rows = n.Requests + n.Attempts + n.Results
		}
		reportRows(b, rows)
	})
	back := openSQLite(b)
	onPG, err := pg.Job(b.Context(), "to-0")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("PostgreSQLToSQLite", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			benchCopy(b, pg, back, onPG, fmt.Sprintf("back-%d", i))
		}
		reportRows(b, rows)
	})
}

// benchCopy copies job under name and reports the largest heap in use
// during the copy, sampled every 10ms: a copy holds a few chunks, not the
// job.
func benchCopy(b *testing.B, from, to jobs.Store, job jobs.Job, name string) (jobs.Job, jobs.CopyCounts) {
	b.Helper()
	runtime.GC()
	stop, peak := make(chan struct{}), make(chan uint64)
	go func() {
		var most uint64
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for t := time.NewTicker(10 * time.Millisecond); ; {
			metrics.Read(sample)
			most = max(most, sample[0].Value.Uint64())
			select {
			case <-stop:
				t.Stop()
				peak <- most
				return
			case <-t.C:
			}
		}
	}()
	got, n, err := jobs.Copy(b.Context(), from, to, job, jobs.CopyOptions{Name: name})
	close(stop)
	b.ReportMetric(float64(<-peak)/(1<<20), "peak-heap-MiB")
	if err != nil {
		b.Fatalf("Copy: %v", err)
	}
	return got, n
}

func reportRows(b *testing.B, rows int) {
	per := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(copyBenchN)/per, "requests/s")
	b.ReportMetric(float64(rows)/per, "rows/s")
}

// benchRunJob imports copyBenchN requests into st and records what a run
// would: a 429 for every tenth first, then an answer for each, but a 400
// for every twentieth.
func benchRunJob(b *testing.B, st jobs.Store) jobs.Job {
	b.Helper()
	ctx := b.Context()
	job, err := st.Import(ctx, jobs.Job{Name: "bench", Source: "bench.jsonl"}, &sliceSource{reqs: benchRequests(copyBenchN)})
	if err != nil {
		b.Fatal(err)
	}
	for pass := 0; pass < 2; pass++ {
		for {
			// The first pass's 429s wait until t0+1s: the second claims them.
			reqs, err := st.Claim(ctx, job.ID, 5000, t0.Add(time.Duration(pass)*time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			if len(reqs) == 0 {
				break
			}
			outs := make([]jobs.Outcome, len(reqs))
			for i, r := range reqs {
				outs[i] = benchOutcome(r, pass)
			}
			if err := st.Record(ctx, outs); err != nil {
				b.Fatal(err)
			}
		}
	}
	return job
}

// benchOutcome is what the run of benchRunJob records for r in a pass.
func benchOutcome(r jobs.Request, pass int) jobs.Outcome {
	a := &jobs.Attempt{RequestID: r.ID, Number: r.Attempts + 1, StartedAt: t0, Duration: 2 * time.Second, StatusCode: 200}
	switch {
	case pass == 0 && r.Line%10 == 0:
		a.StatusCode, a.Class, a.Message = 429, jobs.ClassRateLimited, "Rate limit reached"
		return jobs.Outcome{Request: r, Attempt: a, Next: jobs.StatusPending, CountAttempt: true, NotBefore: t0.Add(time.Second),
			Failure: &jobs.Failure{Class: jobs.ClassRateLimited, StatusCode: 429, Message: a.Message}}
	case r.Line%20 == 7:
		a.StatusCode, a.Class, a.Message = 400, jobs.ClassInvalidRequest, "max_tokens is too large"
		return jobs.Outcome{Request: r, Attempt: a, Next: jobs.StatusFailed, CountAttempt: true,
			Failure: &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: a.Message,
				Body: []byte(`{"error":{"message":"max_tokens is too large","type":"invalid_request_error"}}`)}}
	}
	text := fmt.Sprintf("Answer %d: %0700d", r.Line, r.Line)
	return jobs.Outcome{Request: r, Attempt: a, Next: jobs.StatusSucceeded, CountAttempt: true,
		Result: &jobs.Result{RequestID: r.ID, StatusCode: 200, ResponseID: fmt.Sprintf("chatcmpl-%d", r.Line),
			Model: r.Model, Raw: fmt.Appendf(nil, `{"id":"chatcmpl-%d","object":"chat.completion","choices":[{"index":0,`+
				`"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":80,`+
				`"completion_tokens":200,"total_tokens":280}}`, r.Line, text),
			Content: text, FinishReason: "stop", Latency: 2 * time.Second, TTFT: 300 * time.Millisecond, CreatedAt: t0,
			Usage: jobs.Usage{Known: true, PromptTokens: 80, CompletionTokens: 200, TotalTokens: 280}}}
}
