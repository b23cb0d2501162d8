package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

// Stats reads a job's counts, token totals (also per model), attempts,
// error classes, latency and time-to-first-token percentiles, and its
// throughput over the last minute and five minutes before s.Now(), all in
// one snapshot (the summary's), so that every figure comes from the same
// moment even while runners on other hosts commit.
func (s *Store) Stats(ctx context.Context, jobID int64) (jobs.Stats, error) {
	sum, err := s.beginSummary(ctx, jobID)
	if err != nil {
		return jobs.Stats{}, err
	}
	defer sum.Close()
	if err := sum.addUsage(ctx); err != nil {
		return sum.stats, err
	}
	if err := sum.CountAttempts(ctx); err != nil {
		return sum.stats, err
	}
	st, q := sum.stats, sum.tx
	if st.Errors, err = errorClasses(ctx, q, jobID); err != nil {
		return st, err
	}
	if st.LatencyP50, st.LatencyP95, st.LatencyP99, err = quantiles(ctx, q, jobID, "latency_ms"); err != nil {
		return st, err
	}
	if st.TTFTP50, st.TTFTP95, st.TTFTP99, err = quantiles(ctx, q, jobID, "ttft_ms"); err != nil {
		return st, err
	}
	err = s.activity(ctx, q, jobID, &st)
	return st, err
}

// activity fills the throughput windows, which end at the store's clock,
// and the span of the job's attempts.
func (s *Store) activity(ctx context.Context, q querier, jobID int64, st *jobs.Stats) error {
	var err error
	st.At = s.Now()
	if st.Last1m, err = throughput(ctx, q, jobID, st.At, time.Minute); err != nil {
		return err
	}
	if st.Last5m, err = throughput(ctx, q, jobID, st.At, 5*time.Minute); err != nil {
		return err
	}
	st.FirstAttempt, st.LastAttempt, err = activeSpan(ctx, q, jobID)
	return err
}

// errorClasses counts the failed attempts by class, most frequent first,
// with one message each, and the lines kept invalid at import, which
// failed without an attempt. Classes and messages compare by byte value
// (COLLATE "C"), as in SQLite, whatever the database's collation.
func errorClasses(ctx context.Context, q querier, jobID int64) ([]jobs.ClassCount, error) {
	rows, err := q.Query(ctx, `SELECT error_class, count(*), max(coalesce(message, '') COLLATE "C")
		FROM attempts WHERE job_id = $1 AND error_class IS NOT NULL
		GROUP BY error_class ORDER BY count(*) DESC, error_class COLLATE "C"`, jobID)
	if err != nil {
		return nil, fmt.Errorf("stats: errors: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobs.ClassCount, error) {
		var c jobs.ClassCount
		var class string
		err := row.Scan(&class, &c.Count, &c.Example)
		c.Class = jobs.ErrorClass(class)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("stats: errors: %w", err)
	}
	invalid, err := invalidClass(ctx, q, jobID)
	if err != nil || invalid.Count == 0 {
		return list, err
	}
	list = append(list, invalid)
	slices.SortStableFunc(list, func(a, b jobs.ClassCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Class, b.Class))
	})
	return list, nil
}

// invalidClass counts the lines kept invalid at import (--skip-invalid):
// they failed without an attempt, and count once each.
func invalidClass(ctx context.Context, q querier, jobID int64) (jobs.ClassCount, error) {
	c := jobs.ClassCount{Class: jobs.ClassInvalidInput}
	if err := q.QueryRow(ctx, `SELECT count(*), coalesce(max(error_message COLLATE "C"), '') FROM requests
		WHERE job_id = $1 AND status = 'failed' AND error_class = $2`, jobID, string(jobs.ClassInvalidInput)).Scan(&c.Count, &c.Example); err != nil {
		return c, fmt.Errorf("stats: errors: %w", err)
	}
	return c, nil
}

// quantiles returns the p50, p95 and p99 of a duration column of the job's
// results (nearest rank, NULLs and cached results left out).
func quantiles(ctx context.Context, q querier, jobID int64, column string) (p50, p95, p99 time.Duration, err error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM results
		WHERE job_id = $1 AND cached = 0 AND `+column+` IS NOT NULL`, jobID).Scan(&n); err != nil {
		return 0, 0, 0, fmt.Errorf("stats: %s: %w", column, err)
	}
	var ps [3]time.Duration
	for i, pct := range []int{50, 95, 99} {
		if ps[i], err = quantile(ctx, q, jobID, column, n, pct); err != nil {
			return 0, 0, 0, err
		}
	}
	return ps[0], ps[1], ps[2], nil
}

// quantile returns the pct-th percentile of a column of n non-NULL values
// by nearest rank: the value of rank ceil(pct·n/100), in integers so that
// no float rounding moves the rank (percentile_disc would compare
// fractions). The ORDER BY … OFFSET walks results_job_latency or
// results_job_ttft rather than sorting every result of the job.
func quantile(ctx context.Context, q querier, jobID int64, column string, n, pct int) (time.Duration, error) {
	if n == 0 {
		return 0, nil
	}
	offset := max(0, min((pct*n+99)/100-1, n-1))
	var ms int64
	err := q.QueryRow(ctx, `SELECT `+column+` FROM results WHERE job_id = $1 AND cached = 0 AND `+column+` IS NOT NULL
		ORDER BY `+column+` LIMIT 1 OFFSET $2`, jobID, offset).Scan(&ms)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("stats: %s: %w", column, err)
	}
	return msDuration(ms), nil
}
