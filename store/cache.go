package store

import (
	"context"
	"fmt"
	"strings"
)

// resultCopyColumns are the columns of a result that a cached answer copies
// from the result it reuses.
const resultCopyColumns = `status_code, response_id, provider_request_id, model, raw, content,
	reasoning_content, finish_reason, usage_known, prompt_tokens, completion_tokens, reasoning_tokens,
	cached_tokens, total_tokens, latency_ms, ttft_ms`

// AnswerFromCache answers each pending request of an active job whose cache
// key an earlier request of this database (of any job) was answered for:
// it copies that request's result, marked cached, and marks the request
// succeeded. No attempt is recorded and no attempt counted: nothing was
// sent. It returns how many requests it answered. Called at the start of a
// run, before any request is claimed; both statements run in one
// transaction, so a crash leaves either both or neither.
func (s *Store) AnswerFromCache(ctx context.Context, jobID int64) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("answer from cache: %w", err)
	}
	defer tx.Rollback()
	// The earliest succeeded request with the same key answers; a request
	// never answers itself, and one whose job is cancelled still counts
	// (its results stay, and so does what they cost).
	res, err := tx.ExecContext(ctx, `INSERT INTO results (request_id, job_id, `+resultCopyColumns+`, created_at, cached)
		SELECT q.id, q.job_id, `+prefixed("x.", resultCopyColumns)+`, ?, 1
		FROM requests q JOIN results x ON x.request_id = (
			SELECT p.id FROM requests p
			WHERE p.cache_key = q.cache_key AND p.status = 'succeeded' AND p.id != q.id
			ORDER BY p.id LIMIT 1)
		WHERE q.job_id = ? AND q.status = 'pending' AND q.cache_key IS NOT NULL
			AND (SELECT state FROM jobs WHERE id = ?) = 'active'`,
		millis(s.Now()), jobID, jobID)
	if err != nil {
		return 0, fmt.Errorf("answer from cache: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	// A pending request has no result unless the statement above gave it
	// one. The error of an earlier failed attempt (put back by retry) goes,
	// as it does when the API answers.
	if _, err := tx.ExecContext(ctx, `UPDATE requests SET status = 'succeeded', not_before = 0,
		error_class = NULL, error_status_code = NULL, error_message = NULL, error_body = NULL
		WHERE job_id = ? AND status = 'pending' AND EXISTS (SELECT 1 FROM results WHERE request_id = requests.id)`,
		jobID); err != nil {
		return 0, fmt.Errorf("answer from cache: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("answer from cache: commit: %w", err)
	}
	return int(n), nil
}

// cachedCount counts the job's results copied from the cache.
func (s *Store) cachedCount(ctx context.Context, q querier, jobID int64) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM results WHERE job_id = ? AND cached = 1`, jobID).Scan(&n); err != nil {
		return 0, fmt.Errorf("stats: cached: %w", err)
	}
	return n, nil
}

// prefixed qualifies each column of a comma-separated list with prefix.
func prefixed(prefix, columns string) string {
	cs := strings.Split(columns, ",")
	for i, c := range cs {
		cs[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(cs, ", ")
}
