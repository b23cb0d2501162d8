package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

// Report reads the job's statistics and, from one consistent snapshot of the
// attempts and results, the time series, histograms and request lists of
// the HTML report. It computes them as store/sqlite does, so that the two
// engines draw the same report of the same job.
func (s *Store) Report(ctx context.Context, jobID int64, opts jobs.ReportOptions) (jobs.Report, error) {
	var rep jobs.Report
	var err error
	if rep.Stats, err = s.Stats(ctx, jobID); err != nil {
		return rep, err
	}
	tx, err := s.pool.BeginTx(ctx, snapshot)
	if err != nil {
		return rep, fmt.Errorf("report: %w", err)
	}
	defer tx.Rollback(context.Background())
	if err := readSeries(ctx, tx, jobID, opts.Buckets, &rep); err != nil {
		return rep, fmt.Errorf("report: %w", err)
	}
	if err := readHistograms(ctx, tx, jobID, opts.Bins, &rep); err != nil {
		return rep, fmt.Errorf("report: %w", err)
	}
	if rep.Slowest, err = readSlowest(ctx, tx, jobID, opts.Slowest); err != nil {
		return rep, fmt.Errorf("report: slowest: %w", err)
	}
	if rep.Failed, rep.FailedTotal, err = readFailed(ctx, tx, jobID, opts.Failed); err != nil {
		return rep, fmt.Errorf("report: failed: %w", err)
	}
	return rep, tx.Commit(ctx)
}

// readSeries fills the time span, the bucket width and the per-bucket
// counts of completed and failed attempts, by the time each attempt ended.
// The bucket index is bigint division, which truncates as SQLite's does.
func readSeries(ctx context.Context, tx pgx.Tx, jobID int64, buckets int, rep *jobs.Report) error {
	var first, last *int64
	if err := tx.QueryRow(ctx, `SELECT min(started_at), max(started_at + duration_ms)
		FROM attempts WHERE job_id = $1`, jobID).Scan(&first, &last); err != nil {
		return fmt.Errorf("span: %w", err)
	}
	if first == nil {
		return nil
	}
	rep.Start, rep.End = time.UnixMilli(*first), time.UnixMilli(*last)
	rep.Bucket = jobs.ReportBucket(rep.End.Sub(rep.Start), buckets)
	rep.BucketStart = rep.Start.Truncate(rep.Bucket)
	n := int(rep.End.Sub(rep.BucketStart)/rep.Bucket) + 1
	rows, err := tx.Query(ctx, `SELECT coalesce(error_class, ''), (started_at + duration_ms - $1) / $2, count(*)
		FROM attempts WHERE job_id = $3 GROUP BY 1, 2`, rep.BucketStart.UnixMilli(), rep.Bucket.Milliseconds(), jobID)
	if err != nil {
		return fmt.Errorf("series: %w", err)
	}
	defer rows.Close()
	series := jobs.NewSeries(n)
	for rows.Next() {
		var class string
		var i int64
		var c int
		if err := rows.Scan(&class, &i, &c); err != nil {
			return fmt.Errorf("series: %w", err)
		}
		series.Add(class, i, c)
	}
	series.Fill(rep)
	return rows.Err()
}

func readHistograms(ctx context.Context, tx pgx.Tx, jobID int64, bins int, rep *jobs.Report) error {
	lat, err := readDurations(ctx, tx, `SELECT latency_ms FROM results WHERE job_id = $1 AND cached = 0 ORDER BY latency_ms`, jobID)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	ttft, err := readDurations(ctx, tx, `SELECT ttft_ms FROM results WHERE job_id = $1 AND cached = 0 AND ttft_ms IS NOT NULL
		ORDER BY ttft_ms`, jobID)
	if err != nil {
		return fmt.Errorf("time to first token: %w", err)
	}
	rep.Latency, rep.TTFT = jobs.NewHistogram(lat, bins), jobs.NewHistogram(ttft, bins)
	return nil
}

// readDurations reads one column of milliseconds, sorted by the query.
func readDurations(ctx context.Context, tx pgx.Tx, query string, jobID int64) ([]time.Duration, error) {
	rows, err := tx.Query(ctx, query, jobID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (time.Duration, error) {
		var ms int64
		err := row.Scan(&ms)
		return msDuration(ms), err
	})
}

func readSlowest(ctx context.Context, tx pgx.Tx, jobID int64, limit int) ([]jobs.SlowRequest, error) {
	rows, err := tx.Query(ctx, `SELECT q.custom_id, q.model, q.attempts, x.latency_ms, coalesce(x.ttft_ms, 0),
		x.usage_known, x.prompt_tokens, x.completion_tokens, x.reasoning_tokens, x.cached_tokens, x.total_tokens
		FROM results x JOIN requests q ON q.id = x.request_id
		WHERE x.job_id = $1 AND x.cached = 0 ORDER BY x.latency_ms DESC, q.id LIMIT $2`, jobID, max(limit, 0))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobs.SlowRequest, error) {
		var r jobs.SlowRequest
		var lat, ttft int64
		var known int
		u := &r.Usage
		err := row.Scan(&r.CustomID, &r.Model, &r.Attempts, &lat, &ttft, &known, &u.PromptTokens,
			&u.CompletionTokens, &u.ReasoningTokens, &u.CachedTokens, &u.TotalTokens)
		r.Latency, r.TTFT, u.Known = msDuration(lat), msDuration(ttft), known == 1
		return r, err
	})
}

func readFailed(ctx context.Context, tx pgx.Tx, jobID int64, limit int) ([]jobs.FailedRequest, int, error) {
	var total int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM requests WHERE job_id = $1 AND status = $2`,
		jobID, string(jobs.StatusFailed)).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := tx.Query(ctx, `SELECT custom_id, model, attempts, coalesce(error_class, ''),
		coalesce(error_status_code, 0), coalesce(error_message, '')
		FROM requests WHERE job_id = $1 AND status = $2 ORDER BY id LIMIT $3`, jobID, string(jobs.StatusFailed), max(limit, 0))
	if err != nil {
		return nil, 0, err
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobs.FailedRequest, error) {
		var r jobs.FailedRequest
		var class string
		err := row.Scan(&r.CustomID, &r.Model, &r.Attempts, &class, &r.Failure.StatusCode, &r.Failure.Message)
		r.Failure.Class = jobs.ErrorClass(class)
		return r, err
	})
	return list, total, err
}
