package sqlite

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// BenchmarkStats1M times Stats, what `status` reads, on a job of a million
// requests: 900,000 succeeded over two models (streamed every tenth), 20,000
// failed, 80,000 pending, one attempt per 10 ms over about 2.8 hours plus
// 100,000 rate-limited retries; the clock stands at the last attempt's end,
// so the throughput windows are full. The database is built once at
// $LLMBATCH_BENCH_STATS_DB (about 1.3 GB) and reused; without it the
// benchmark is skipped.
//
//	LLMBATCH_BENCH_STATS_DB=/tmp/stats1m.db go test -run '^$' -bench Stats1M -benchtime 5x ./store/
func BenchmarkStats1M(b *testing.B) {
	path := os.Getenv("LLMBATCH_BENCH_STATS_DB")
	if path == "" {
		b.Skip("set LLMBATCH_BENCH_STATS_DB to a path for the million-request database")
	}
	_, statErr := os.Stat(path)
	s, clock := mustOpenStoreAt(b, path)
	if statErr != nil {
		build1M(b, s)
	}
	clock.Advance(1_000_000 * 10 * time.Millisecond)
	ctx := context.Background()
	for b.Loop() {
		st, err := s.Stats(ctx, 1)
		if err != nil {
			b.Fatal(err)
		}
		if st.Job.Total != 1_000_000 || st.Last1m.Requests == 0 {
			b.Fatalf("Stats = total %d, %d completed in the last minute", st.Job.Total, st.Last1m.Requests)
		}
	}
}

// build1M fills the database with SQL rather than Record, which would take
// minutes for a million outcomes.
func build1M(b *testing.B, s *Store) {
	b.Helper()
	start := time.Now()
	mustImport(b, s, "million", benchRequests(1_000_000))
	base := millis(t0)
	for _, q := range []string{
		`UPDATE requests SET model = 'deepseek/deepseek-r1' WHERE id % 2 = 0`,
		`UPDATE requests SET status = CASE WHEN id % 50 = 0 THEN 'failed' WHEN id > 920000 THEN 'pending' ELSE 'succeeded' END,
			attempts = CASE WHEN id > 920000 AND id % 50 != 0 THEN 0 WHEN id % 10 = 3 THEN 2 ELSE 1 END`,
		`INSERT INTO attempts (job_id, request_id, number, started_at, duration_ms, status_code, error_class, message)
			SELECT 1, id, 1, ? + id * 10 - 2000, 1500, 429, 'rate_limited', 'slow down'
			FROM requests WHERE id % 10 = 3 AND status != 'pending'`,
		`INSERT INTO attempts (job_id, request_id, number, started_at, duration_ms, status_code, error_class, message)
			SELECT 1, id, attempts, ? + id * 10 - 1000 - id % 997, 1000 + id % 997,
				CASE status WHEN 'failed' THEN 400 ELSE 200 END,
				CASE status WHEN 'failed' THEN 'invalid_request' END,
				CASE status WHEN 'failed' THEN 'max_tokens must be at most 8192' END
			FROM requests WHERE status != 'pending'`,
		`INSERT INTO results (request_id, job_id, status_code, model, raw, content, usage_known, prompt_tokens,
			completion_tokens, reasoning_tokens, cached_tokens, total_tokens, latency_ms, ttft_ms, created_at)
			SELECT id, 1, 200, model, zeroblob(700), printf('answer %d', id), 1, 60, 100, 40 * (id % 2), 10, 160,
				1000 + id % 997, CASE WHEN id % 10 = 0 THEN 200 + id % 301 END, ? + id * 10
			FROM requests WHERE status = 'succeeded'`,
	} {
		var args []any
		if strings.Contains(q, "?") {
			args = append(args, base)
		}
		if _, err := s.w.Exec(q, args...); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	b.Logf("built the million-request job in %v", time.Since(start).Round(time.Second))
}
