package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/llmbatch/llmbatch/jobs"
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
// sent. It returns how many requests it answered. It is a CachePass run to
// the end.
func (s *Store) AnswerFromCache(ctx context.Context, jobID int64) (int, error) {
	p := s.NewCachePass(jobID)
	for {
		more, err := p.Next(ctx, cacheChunk)
		if err != nil || !more {
			return p.Answered(), err
		}
	}
}

// cacheChunk is how many pending requests AnswerFromCache looks at per
// transaction.
const cacheChunk = 10_000

// CachePass answers a job's pending requests from the cache (what
// AnswerFromCache does) a chunk at a time, one write transaction each, in
// the order of their ids, which is the order a run claims requests it has
// not tried yet. A run may claim between chunks: the pass, which covers
// some 100,000 requests a second, stays ahead of the claims, and a request
// claimed before the pass reached it is simply sent.
type CachePass struct {
	s     *Store
	jobID int64
	// next is the first id the next chunk looks at, last the highest id
	// of a pending request when the pass began; both 0 before the first
	// chunk.
	next, last int64
	started    bool
	answered   int
}

// Answered counts the requests answered so far.
func (p *CachePass) Answered() int { return p.answered }

// NewCachePass returns a pass over the job's pending requests.
func (s *Store) NewCachePass(jobID int64) jobs.CachePass {
	return &CachePass{s: s, jobID: jobID}
}

// Next looks at the requests of the next n ids and answers those that are
// pending and the cache can answer; it reports whether any are left to
// look at.
func (p *CachePass) Next(ctx context.Context, n int) (more bool, err error) {
	if !p.started {
		// With no result in the database yet, nothing can answer: a new
		// job in a new database starts sending at once.
		var first, last sql.NullInt64
		var answers bool
		if err := p.s.r.QueryRowContext(ctx, `SELECT min(id), max(id), EXISTS (SELECT 1 FROM results)
			FROM requests WHERE job_id = ? AND status = 'pending'`, p.jobID).Scan(&first, &last, &answers); err != nil {
			return false, fmt.Errorf("answer from cache: %w", err)
		}
		p.started, p.next, p.last = true, first.Int64, last.Int64
		if !first.Valid || !answers {
			return false, nil
		}
	}
	if p.next > p.last {
		return false, nil
	}
	from, to := p.next, p.next+int64(max(1, n)) // ids in [from, to)
	tx, err := p.s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("answer from cache: %w", err)
	}
	defer tx.Rollback()
	// The earliest succeeded request with the same key answers; a request
	// never answers itself, and one whose job is cancelled still counts
	// (its results stay, and so does what they cost). NOT INDEXED makes
	// SQLite walk the id range, not every pending request of the job.
	res, err := tx.ExecContext(ctx, `INSERT INTO results (request_id, job_id, `+resultCopyColumns+`, created_at, cached)
		SELECT q.id, q.job_id, `+prefixed("x.", resultCopyColumns)+`, ?, 1
		FROM requests q NOT INDEXED JOIN results x ON x.request_id = (
			SELECT p.id FROM requests p
			WHERE p.cache_key = q.cache_key AND p.status = 'succeeded' AND p.id != q.id
			ORDER BY p.id LIMIT 1)
		WHERE q.id >= ? AND q.id < ? AND q.job_id = ? AND q.status = 'pending' AND q.cache_key IS NOT NULL
			AND (SELECT state FROM jobs WHERE id = ?) = 'active'`,
		millis(p.s.Now()), from, to, p.jobID, p.jobID)
	if err != nil {
		return false, fmt.Errorf("answer from cache: %w", err)
	}
	answered, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("answer from cache: %w", err)
	}
	if answered > 0 {
		// A pending request has no result unless the statement above gave
		// it one. The error of an earlier failed attempt (put back by
		// retry) goes, as it does when the API answers.
		if _, err := tx.ExecContext(ctx, `UPDATE requests NOT INDEXED SET status = 'succeeded', not_before = 0,
			error_class = NULL, error_status_code = NULL, error_message = NULL, error_body = NULL
			WHERE id >= ? AND id < ? AND job_id = ? AND status = 'pending'
				AND EXISTS (SELECT 1 FROM results WHERE request_id = requests.id)`,
			from, to, p.jobID); err != nil {
			return false, fmt.Errorf("answer from cache: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("answer from cache: commit: %w", err)
	}
	p.next = to
	p.answered += int(answered)
	return p.next <= p.last, nil
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
