package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// throughput counts the requests whose last attempt ended in the window
// (at-window, at]: the attempts without an error class (each made a
// result) and the failed attempts that failed their request for good (the
// request is failed and this was its last attempt), each request once: a
// fatal attempt (which used up no attempt) and the attempts before a
// `retry` carry the same numbers as the later ones, so the latest of a
// request's matching attempts stands for it. It reads the window
// by the end of each attempt through the attempts_job_ended index, so a
// million-request job costs only the rows in the window.
func (s *Store) throughput(ctx context.Context, q querier, jobID int64, at time.Time, window time.Duration) (jobs.Throughput, error) {
	t := jobs.Throughput{Window: window}
	since, until := millis(at.Add(-window)), millis(at)
	var known int
	var first sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(tokens), 0), coalesce(max(known), 0), min(started)
		FROM (SELECT max(x.total_tokens) AS tokens, max(x.usage_known) AS known, max(a.started_at) AS started
		FROM attempts a JOIN requests q ON q.id = a.request_id
		LEFT JOIN results x ON a.error_class IS NULL AND x.request_id = a.request_id
		WHERE a.job_id = ? AND a.started_at + a.duration_ms > ? AND a.started_at + a.duration_ms <= ?
		AND (a.error_class IS NULL OR (q.status = 'failed' AND a.number = q.attempts))
		GROUP BY a.request_id)`,
		jobID, since, until).Scan(&t.Requests, &t.Tokens, &known, &first)
	if err != nil {
		return t, fmt.Errorf("stats: throughput: %w", err)
	}
	t.TokensKnown = known == 1
	if t.Requests > 0 && first.Valid {
		t.Span = at.Sub(time.UnixMilli(max(first.Int64, since)))
	}
	return t, nil
}

// activeSpan returns when the job's first attempt started and its last one
// ended (zero when it has none). Each is its own query so that SQLite
// answers it from one end of an index.
func (s *Store) activeSpan(ctx context.Context, q querier, jobID int64) (first, last time.Time, err error) {
	var f, l sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT min(started_at) FROM attempts WHERE job_id = ?`, jobID).Scan(&f); err != nil {
		return first, last, fmt.Errorf("stats: first attempt: %w", err)
	}
	if err := q.QueryRowContext(ctx, `SELECT max(started_at + duration_ms) FROM attempts WHERE job_id = ?`, jobID).Scan(&l); err != nil {
		return first, last, fmt.Errorf("stats: last attempt: %w", err)
	}
	if f.Valid {
		first = time.UnixMilli(f.Int64)
	}
	if l.Valid {
		last = time.UnixMilli(l.Int64)
	}
	return first, last, nil
}
