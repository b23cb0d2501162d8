package postgres

import (
	"context"
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
// request's matching attempts stands for it. It reads the window by the
// end of each attempt, through the attempts_job_ended index (whose
// expression, started_at + duration_ms, the query spells the same way), so
// a million-request job costs only the rows in the window.
func throughput(ctx context.Context, q querier, jobID int64, at time.Time, window time.Duration) (jobs.Throughput, error) {
	t := jobs.Throughput{Window: window}
	since, until := millis(at.Add(-window)), millis(at)
	var known int
	var first *int64
	err := q.QueryRow(ctx, `SELECT count(*), coalesce(sum(tokens), 0)::bigint, coalesce(max(known), 0), min(started)
		FROM (SELECT max(x.total_tokens) AS tokens, max(x.usage_known) AS known, max(a.started_at) AS started
		FROM attempts a JOIN requests q ON q.id = a.request_id
		LEFT JOIN results x ON a.error_class IS NULL AND x.request_id = a.request_id
		WHERE a.job_id = $1 AND a.started_at + a.duration_ms > $2 AND a.started_at + a.duration_ms <= $3
		AND (a.error_class IS NULL OR (q.status = 'failed' AND a.number = q.attempts))
		GROUP BY a.request_id) AS done`,
		jobID, since, until).Scan(&t.Requests, &t.Tokens, &known, &first)
	if err != nil {
		return t, fmt.Errorf("stats: throughput: %w", err)
	}
	t.TokensKnown = known == 1
	if t.Requests > 0 && first != nil {
		t.Span = at.Sub(time.UnixMilli(max(*first, since)))
	}
	return t, nil
}

// activeSpan returns when the job's first attempt started and its last one
// ended (zero when it has none). Each is its own query so that each is
// answered from one end of an index (attempts_job, attempts_job_ended).
func activeSpan(ctx context.Context, q querier, jobID int64) (first, last time.Time, err error) {
	var f, l *int64
	if err := q.QueryRow(ctx, `SELECT min(started_at) FROM attempts WHERE job_id = $1`, jobID).Scan(&f); err != nil {
		return first, last, fmt.Errorf("stats: first attempt: %w", err)
	}
	if err := q.QueryRow(ctx, `SELECT max(started_at + duration_ms) FROM attempts WHERE job_id = $1`, jobID).Scan(&l); err != nil {
		return first, last, fmt.Errorf("stats: last attempt: %w", err)
	}
	if f != nil {
		first = time.UnixMilli(*f)
	}
	if l != nil {
		last = time.UnixMilli(*l)
	}
	return first, last, nil
}
