package sqlite

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// benchBody is a chat body of about 300 bytes, the size of a typical line.
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
			Model: "deepseek/deepseek-v3", Body: benchBody(i + 1)}
	}
	return reqs
}

// BenchmarkImport imports a 10,000-line file per iteration, in one
// transaction as the import command does.
func BenchmarkImport(b *testing.B) {
	const lines = 10_000
	s := mustOpenStore(b)
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

// BenchmarkClaim claims batches of 64, as a run's dispatcher does; a drained
// job is put back to pending outside the timer.
func BenchmarkClaim(b *testing.B) {
	const batch, pool = 64, 64 * 500
	ctx := context.Background()
	s := mustOpenStore(b)
	job := mustImport(b, s, "claim", benchRequests(pool))
	claimed := 0
	for b.Loop() {
		reqs, err := s.Claim(ctx, job.ID, batch, t0)
		if err != nil {
			b.Fatal(err)
		}
		claimed += len(reqs)
		if len(reqs) < batch {
			b.StopTimer()
			if _, err := s.Recover(ctx, job.ID); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(claimed)/b.Elapsed().Seconds(), "requests/s")
}

// BenchmarkRecord records successes in transactions of 1 and of 256 (the
// group commit); each op is one transaction, results/s compares the two.
func BenchmarkRecord(b *testing.B) {
	raw := []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"deepseek/deepseek-v3","choices":[{"index":0,` +
		`"message":{"role":"assistant","content":"` + strings.Repeat("y", 400) + `"},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":60,"completion_tokens":100,"total_tokens":160}}`)
	for _, perTx := range []int{1, 256} {
		b.Run(fmt.Sprintf("PerTx=%d", perTx), func(b *testing.B) {
			benchRecord(b, perTx, raw)
		})
	}
}

func benchRecord(b *testing.B, perTx int, raw []byte) {
	const pool = 256 * 20
	ctx := context.Background()
	s := mustOpenStore(b)
	job := mustImport(b, s, "record", benchRequests(pool))
	reqs := mustClaim(b, s, job.ID, pool)
	outcomes := make([]jobs.Outcome, len(reqs))
	for i, r := range reqs {
		outcomes[i] = jobs.Outcome{Request: r, Next: jobs.StatusSucceeded, CountAttempt: true,
			Attempt: &jobs.Attempt{Number: 1, StartedAt: t0, Duration: 900 * time.Millisecond, StatusCode: 200},
			Result: &jobs.Result{StatusCode: 200, ResponseID: "chatcmpl-1", Model: "deepseek/deepseek-v3", Raw: raw,
				Content: strings.Repeat("y", 400), FinishReason: "stop", Latency: 900 * time.Millisecond, CreatedAt: t0,
				Usage: jobs.Usage{Known: true, PromptTokens: 60, CompletionTokens: 100, TotalTokens: 160}}}
	}
	next, recorded := 0, 0
	for b.Loop() {
		if next+perTx > len(outcomes) {
			b.StopTimer()
			mustExec(b, s, `DELETE FROM results`)
			mustExec(b, s, `DELETE FROM attempts`)
			mustExec(b, s, `UPDATE requests SET status = 'running', attempts = 0`)
			next = 0
			b.StartTimer()
		}
		if err := s.Record(ctx, outcomes[next:next+perTx]); err != nil {
			b.Fatal(err)
		}
		next += perTx
		recorded += perTx
	}
	if n := queryInt(b, s, `SELECT count(*) FROM results`); n != next {
		b.Fatalf("results = %d, want %d", n, next)
	}
	b.ReportMetric(float64(recorded)/b.Elapsed().Seconds(), "results/s")
}

// BenchmarkCycle is a run's store work without the HTTP: claim a batch,
// record its successes in one group commit, as the runner does at zero
// latency. Each op is one request; CPU time is the process's.
func BenchmarkCycle(b *testing.B) {
	for _, batch := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("Batch=%d", batch), func(b *testing.B) {
			benchCycle(b, batch)
		})
	}
}

func benchCycle(b *testing.B, batch int) {
	ctx := context.Background()
	s := mustOpenStore(b)
	pool := max(20_000, b.N+batch)
	job := mustImport(b, s, "cycle", benchRequests(pool))
	res := benchResult()
	outcomes := make([]jobs.Outcome, 0, batch)
	b.ResetTimer()
	defer reportCPU(b, cpuNow())
	done := 0
	for done < b.N {
		reqs, err := s.Claim(ctx, job.ID, batch, t0)
		if err != nil || len(reqs) == 0 {
			b.Fatalf("Claim = %d requests, %v", len(reqs), err)
		}
		outcomes = outcomes[:0]
		for _, r := range reqs {
			outcomes = append(outcomes, success(r, res))
		}
		if err := s.Record(ctx, outcomes); err != nil {
			b.Fatal(err)
		}
		done += len(reqs)
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "requests/s")
}

// benchResult is a typical answer of about 700 bytes.
func benchResult() *jobs.Result {
	raw := []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"deepseek/deepseek-v3","choices":[{"index":0,` +
		`"message":{"role":"assistant","content":"` + strings.Repeat("y", 400) + `"},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":60,"completion_tokens":100,"total_tokens":160}}`)
	return &jobs.Result{StatusCode: 200, ResponseID: "chatcmpl-1", Model: "deepseek/deepseek-v3", Raw: raw,
		Content: strings.Repeat("y", 400), FinishReason: "stop", Latency: 900 * time.Millisecond, CreatedAt: t0,
		Usage: jobs.Usage{Known: true, PromptTokens: 60, CompletionTokens: 100, TotalTokens: 160}}
}

func success(r jobs.Request, res *jobs.Result) jobs.Outcome {
	r.Body = nil
	return jobs.Outcome{Request: r, Next: jobs.StatusSucceeded, CountAttempt: true,
		Attempt: &jobs.Attempt{Number: 1, StartedAt: t0, Duration: 900 * time.Millisecond, StatusCode: 200},
		Result:  res}
}

// cpuNow is the CPU time (user and system) the process has used.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since start: on a shared machine
// it varies much less than the wall time.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op")
}
