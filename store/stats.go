package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// querier is what statistics read through: the reader pool, or one read
// transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Stats reads a job's counts, token totals, attempts, error classes and
// latency percentiles. It reads through the reader pool, so it never waits
// for a run's writes, and in one read transaction, so that every figure
// comes from the same snapshot even while a run commits.
func (s *Store) Stats(ctx context.Context, jobID int64) (jobs.Stats, error) {
	var st jobs.Stats
	q, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	defer q.Rollback()
	row := q.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, jobID)
	if st.Job, err = scanJob(row); err == sql.ErrNoRows {
		return st, jobs.ErrNotFound
	} else if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	if st.Counts, err = s.counts(ctx, q, jobID); err != nil {
		return st, err
	}
	if st.Usage, err = s.usage(ctx, q, jobID); err != nil {
		return st, err
	}
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM attempts WHERE job_id = ?`, jobID).Scan(&st.Attempts); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	if st.Cached, err = s.cachedCount(ctx, q, jobID); err != nil {
		return st, err
	}
	if st.Errors, err = s.errorClasses(ctx, q, jobID); err != nil {
		return st, err
	}
	if st.Models, err = s.modelUsage(ctx, q, jobID); err != nil {
		return st, err
	}
	if st.LatencyP50, st.LatencyP95, err = s.quantiles(ctx, q, jobID, "latency_ms"); err != nil {
		return st, err
	}
	st.TTFTP50, st.TTFTP95, err = s.quantiles(ctx, q, jobID, "ttft_ms")
	return st, err
}

// quantiles returns the p50 and p95 of a duration column of the job's
// results (nearest rank, NULLs left out).
func (s *Store) quantiles(ctx context.Context, q querier, jobID int64, column string) (p50, p95 time.Duration, err error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(`+column+`) FROM results WHERE job_id = ? AND cached = 0`, jobID).Scan(&n); err != nil {
		return 0, 0, fmt.Errorf("stats: %s: %w", column, err)
	}
	if p50, err = s.quantile(ctx, q, jobID, column, n, 50); err != nil {
		return 0, 0, err
	}
	p95, err = s.quantile(ctx, q, jobID, column, n, 95)
	return p50, p95, err
}

func (s *Store) usage(ctx context.Context, q querier, jobID int64) (jobs.Usage, error) {
	var u jobs.Usage
	var known int
	err := q.QueryRowContext(ctx, `SELECT coalesce(max(usage_known), 0), coalesce(sum(prompt_tokens), 0),
		coalesce(sum(completion_tokens), 0), coalesce(sum(reasoning_tokens), 0), coalesce(sum(cached_tokens), 0),
		coalesce(sum(total_tokens), 0) FROM results WHERE job_id = ? AND cached = 0`, jobID).
		Scan(&known, &u.PromptTokens, &u.CompletionTokens, &u.ReasoningTokens, &u.CachedTokens, &u.TotalTokens)
	u.Known = known == 1
	if err != nil {
		return u, fmt.Errorf("stats: usage: %w", err)
	}
	return u, nil
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
	return list, rows.Err()
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
