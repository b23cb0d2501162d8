package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// querier is what statistics read through: the reader pool, or one read
// transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Stats reads a job's counts, token totals (also per model), attempts,
// error classes, latency and time-to-first-token percentiles, and its
// throughput over the last minute and five minutes before s.Now(). It
// reads through the reader pool, so it never waits for a run's writes, and
// in one read transaction, so that every figure comes from the same
// snapshot even while a run commits.
func (s *Store) Stats(ctx context.Context, jobID int64) (jobs.Stats, error) {
	// The summary a run reads before it starts is where Stats begins: the
	// job, its counts and its usage, in the same read transaction.
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
	if st.Errors, err = s.errorClasses(ctx, q, jobID); err != nil {
		return st, err
	}
	if st.LatencyP50, st.LatencyP95, st.LatencyP99, err = s.quantiles(ctx, q, jobID, "latency_ms"); err != nil {
		return st, err
	}
	if st.TTFTP50, st.TTFTP95, st.TTFTP99, err = s.quantiles(ctx, q, jobID, "ttft_ms"); err != nil {
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
	if st.Last1m, err = s.throughput(ctx, q, jobID, st.At, time.Minute); err != nil {
		return err
	}
	if st.Last5m, err = s.throughput(ctx, q, jobID, st.At, 5*time.Minute); err != nil {
		return err
	}
	st.FirstAttempt, st.LastAttempt, err = s.activeSpan(ctx, q, jobID)
	return err
}

// quantiles returns the p50, p95 and p99 of a duration column of the job's
// results (nearest rank, NULLs left out).
func (s *Store) quantiles(ctx context.Context, q querier, jobID int64, column string) (p50, p95, p99 time.Duration, err error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM results
		WHERE job_id = ? AND cached = 0 AND `+column+` IS NOT NULL`, jobID).Scan(&n); err != nil {
		return 0, 0, 0, fmt.Errorf("stats: %s: %w", column, err)
	}
	var ps [3]time.Duration
	for i, pct := range []int{50, 95, 99} {
		if ps[i], err = s.quantile(ctx, q, jobID, column, n, pct); err != nil {
			return 0, 0, 0, err
		}
	}
	return ps[0], ps[1], ps[2], nil
}

func (s *Store) errorClasses(ctx context.Context, q querier, jobID int64) ([]jobs.ClassCount, error) {
	rows, err := q.QueryContext(ctx, `SELECT error_class, count(*), max(coalesce(message, ''))
		FROM attempts WHERE job_id = ? AND error_class IS NOT NULL
		GROUP BY error_class ORDER BY count(*) DESC, error_class`, jobID)
	if err != nil {
		return nil, fmt.Errorf("stats: errors: %w", err)
	}
	defer rows.Close()
	list := []jobs.ClassCount{}
	for rows.Next() {
		var c jobs.ClassCount
		var class string
		if err := rows.Scan(&class, &c.Count, &c.Example); err != nil {
			return nil, err
		}
		c.Class = jobs.ErrorClass(class)
		list = append(list, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Lines kept invalid at import (--skip-invalid) failed without an
	// attempt; they count once each.
	var invalid jobs.ClassCount
	if err := q.QueryRowContext(ctx, `SELECT count(*), coalesce(max(error_message), '') FROM requests
		WHERE job_id = ? AND status = 'failed' AND error_class = ?`, jobID, string(jobs.ClassInvalidInput)).Scan(&invalid.Count, &invalid.Example); err != nil {
		return nil, fmt.Errorf("stats: errors: %w", err)
	}
	if invalid.Count > 0 {
		invalid.Class = jobs.ClassInvalidInput
		list = append(list, invalid)
		slices.SortStableFunc(list, func(a, b jobs.ClassCount) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Class, b.Class))
		})
	}
	return list, nil
}

// quantile returns the pct-th percentile of a column of n non-NULL values by nearest rank:
// the value of rank ceil(pct·n/100), in integers so that no float rounding
// moves the rank.
func (s *Store) quantile(ctx context.Context, q querier, jobID int64, column string, n, pct int) (time.Duration, error) {
	if n == 0 {
		return 0, nil
	}
	offset := (pct*n+99)/100 - 1
	offset = max(0, min(offset, n-1))
	var ms int64
	err := q.QueryRowContext(ctx, `SELECT `+column+` FROM results WHERE job_id = ? AND cached = 0 AND `+column+` IS NOT NULL
		ORDER BY `+column+` LIMIT 1 OFFSET ?`, jobID, offset).Scan(&ms)
	if err == sql.ErrNoRows {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("stats: %s: %w", column, err)
	}
	return msDuration(ms), nil
}
