package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/llmbatch/llmbatch/jobs"
)

// resultCopyColumns are the columns of a result that a cached answer copies
// from the result it reuses.
const resultCopyColumns = `status_code, response_id, provider_request_id, model, raw, content,
	reasoning_content, finish_reason, usage_known, prompt_tokens, completion_tokens, reasoning_tokens,
	cached_tokens, total_tokens, latency_ms, ttft_ms`

// CachePass answers a job's pending requests from the results of identical
// requests (the same cache key) of any job of the database, a chunk of ids
// at a time, one transaction each, in the order of their ids, which is the
// order runners claim requests not tried yet. Runners, on this host or
// others, may claim while it runs: each chunk locks the requests it
// answers (FOR UPDATE SKIP LOCKED, as claims do) and checks they are still
// pending, so a request is either claimed and sent, or answered, never
// both; a request claimed before the pass reached it is simply sent.
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

// NewCachePass returns a pass over the job's pending requests.
func (s *Store) NewCachePass(jobID int64) jobs.CachePass {
	return &CachePass{s: s, jobID: jobID}
}

// Answered counts the requests answered so far.
func (p *CachePass) Answered() int { return p.answered }

// Next looks at the requests of the next n ids and answers those that are
// pending and the cache can answer; it reports whether any are left to
// look at.
func (p *CachePass) Next(ctx context.Context, n int) (more bool, err error) {
	if !p.started {
		// With no result in the database yet, nothing can answer: a new
		// job in a new database starts sending at once.
		var first, last *int64
		var answers bool
		if err := p.s.pool.QueryRow(ctx, `SELECT min(id), max(id), EXISTS (SELECT 1 FROM results)
			FROM requests WHERE job_id = $1 AND status = 'pending'`, p.jobID).Scan(&first, &last, &answers); err != nil {
			return false, fmt.Errorf("answer from cache: %w", err)
		}
		p.started = true
		if first == nil || !answers {
			return false, nil
		}
		p.next, p.last = *first, *last
	}
	if p.next > p.last {
		return false, nil
	}
	from, to := p.next, p.next+int64(max(1, n)) // ids in [from, to)
	answered, err := p.answerChunk(ctx, from, to)
	if err != nil {
		return false, err
	}
	p.next = to
	p.answered += answered
	return p.next <= p.last, nil
}

// answerCopies answers, in one statement, the pending requests with ids
// in [$1, $2) of the job $3, if it is active, that an earlier identical
// request was answered for, with a copy of that request's result made at
// $4 and marked cached.
//
// due locks the requests it answers, skipping those a claim holds, and
// PostgreSQL checks again that each is still pending once it holds the
// lock; the earliest succeeded request with the same key answers (never
// the request itself), and one of a cancelled job still counts: its
// results stay, and so does what they cost. answered marks them
// succeeded; the error of an earlier failed attempt (put back by retry)
// goes, as it does when the API answers. The insert copies the result:
// the primary key of results refuses a second result for a request
// whatever else happens.
var answerCopies = `WITH due AS (
		SELECT q.id, q.job_id, x.request_id AS source
		FROM requests q JOIN results x ON x.request_id = (
			SELECT p.id FROM requests p
			WHERE p.cache_key = q.cache_key AND p.status = 'succeeded' AND p.id <> q.id
			ORDER BY p.id LIMIT 1)
		WHERE q.id >= $1 AND q.id < $2 AND q.job_id = $3 AND q.status = 'pending' AND q.cache_key IS NOT NULL
			AND EXISTS (SELECT 1 FROM jobs WHERE id = $3 AND state = 'active')
		FOR UPDATE OF q SKIP LOCKED
	), answered AS (
		UPDATE requests r SET status = 'succeeded', not_before = 0,
			error_class = NULL, error_status_code = NULL, error_message = NULL, error_body = NULL,
			error_request_id = NULL
		FROM due WHERE r.id = due.id
		RETURNING r.id, r.job_id, due.source
	)
	INSERT INTO results (request_id, job_id, ` + resultCopyColumns + `, created_at, cached)
	SELECT a.id, a.job_id, ` + prefixed("x.", resultCopyColumns) + `, $4, 1
	FROM answered a JOIN results x ON x.request_id = a.source`

// answerChunk answers what it can of the requests with ids in [from, to)
// and returns how many.
func (p *CachePass) answerChunk(ctx context.Context, from, to int64) (int, error) {
	tag, err := p.s.pool.Exec(ctx, answerCopies, from, to, p.jobID, millis(p.s.Now()))
	if err != nil {
		return 0, fmt.Errorf("answer from cache: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// cachedCount counts the job's results copied from the cache.
func cachedCount(ctx context.Context, q querier, jobID int64) (int, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM results WHERE job_id = $1 AND cached = 1`, jobID).Scan(&n); err != nil {
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
