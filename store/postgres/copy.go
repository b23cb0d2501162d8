package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

var _ jobs.JobCopier = (*Store)(nil)

// A dump reads through two server-side cursors of one snapshot: the job's
// requests joined with their results, and its attempts ordered by
// request, fetched in turn and merged, so that neither this process nor
// the connection holds the whole job. A load stores the rows by COPY, a
// chunk at a time, under ids drawn from the tables' sequences.

// Fetch sizes of a dump's cursors, and the bound of a chunk's bytes: a
// fetch of requests is held in memory with their bodies and answers.
const (
	dumpFetch         = 500
	dumpAttemptsFetch = 4000
	dumpChunkBytes    = 16 << 20
)

// DumpJob reads the job, its provider batches, and its requests in input
// order, each with its attempts and its result, in one REPEATABLE READ
// read-only transaction (one snapshot: runners writing meanwhile are
// neither waited for nor seen half-way), and hands them to fn a chunk at
// a time.
func (s *Store) DumpJob(ctx context.Context, jobID int64, fn func(jobs.CopyPart) error) error {
	tx, err := s.pool.BeginTx(ctx, snapshot)
	if err != nil {
		return fmt.Errorf("dump job: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	head, err := dumpHead(ctx, tx, jobID)
	if err != nil {
		return err
	}
	if err := fn(jobs.CopyPart{Head: &head}); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DECLARE copy_requests NO SCROLL CURSOR FOR SELECT `+dumpColumns+`
		FROM requests r LEFT JOIN results x ON x.request_id = r.id WHERE r.job_id = $1 ORDER BY r.id`, jobID); err != nil {
		return fmt.Errorf("dump job: requests: %w", err)
	}
	if _, err := tx.Exec(ctx, `DECLARE copy_attempts NO SCROLL CURSOR FOR SELECT request_id, number, started_at,
		duration_ms, status_code, error_class, message, provider_batch
		FROM attempts WHERE job_id = $1 ORDER BY request_id, id`, jobID); err != nil {
		return fmt.Errorf("dump job: attempts: %w", err)
	}
	return dumpRequests(ctx, tx, fn)
}

// dumpHead reads the job's row and its provider batches.
func dumpHead(ctx context.Context, tx pgx.Tx, jobID int64) (jobs.CopyHead, error) {
	var head jobs.CopyHead
	job, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, jobID))
	if errors.Is(err, pgx.ErrNoRows) {
		return head, fmt.Errorf("dump job %d: %w", jobID, jobs.ErrNotFound)
	} else if err != nil {
		return head, fmt.Errorf("dump job: %w", err)
	}
	head.Job = job
	rows, err := tx.Query(ctx, `SELECT `+batchColumns+` FROM provider_batches WHERE job_id = $1 ORDER BY id`, jobID)
	if err != nil {
		return head, fmt.Errorf("dump job: batches: %w", err)
	}
	head.Batches, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobs.ProviderBatch, error) { return scanBatch(row) })
	if err != nil {
		return head, fmt.Errorf("dump job: batches: %w", err)
	}
	return head, nil
}

// dumpColumns are what a dump reads of a request and its result (x, NULL
// where there is none), in scanDumped's order.
const dumpColumns = `r.id, r.job_id, r.line, r.custom_id, r.endpoint, r.model, r.body, r.metadata, r.cache_key,
	r.status, r.attempts, r.not_before, r.error_class, r.error_status_code, r.error_message, r.error_body,
	r.error_request_id, r.provider_batch, x.status_code, x.response_id, x.provider_request_id, x.model, x.raw,
	x.content, x.reasoning_content, x.finish_reason, x.usage_known, x.prompt_tokens, x.completion_tokens,
	x.reasoning_tokens, x.cached_tokens, x.total_tokens, x.latency_ms, x.ttft_ms, x.created_at, x.cached,
	x.provider_batch`

// dumpRequests hands fn the requests of the open cursors in chunks: a
// fetch of requests at a time, cut where its bytes pass dumpChunkBytes.
func dumpRequests(ctx context.Context, tx pgx.Tx, fn func(jobs.CopyPart) error) error {
	atts := &attemptCursor{tx: tx}
	for {
		fetched, err := fetchDumped(ctx, tx)
		if err != nil {
			return err
		}
		start, size := 0, 0
		for i := range fetched {
			if fetched[i].Attempts, err = atts.of(ctx, fetched[i].Request.ID); err != nil {
				return err
			}
			if size += fetched[i].Size(); size >= dumpChunkBytes || i == len(fetched)-1 {
				if err := fn(jobs.CopyPart{Requests: fetched[start : i+1 : i+1]}); err != nil {
					return err
				}
				start, size = i+1, 0
			}
		}
		if len(fetched) < dumpFetch {
			return atts.end(ctx)
		}
	}
}

// fetchDumped reads the next fetch of the requests' cursor.
func fetchDumped(ctx context.Context, tx pgx.Tx) ([]jobs.CopyRequest, error) {
	rows, err := tx.Query(ctx, fmt.Sprintf(`FETCH FORWARD %d FROM copy_requests`, dumpFetch))
	if err != nil {
		return nil, fmt.Errorf("dump job: requests: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobs.CopyRequest, error) { return scanDumped(row) })
	if err != nil {
		return nil, fmt.Errorf("dump job: requests: %w", err)
	}
	return out, nil
}

// scanDumped reads a row of dumpColumns.
func scanDumped(row scanner) (jobs.CopyRequest, error) {
	var c jobs.CopyRequest
	r := &c.Request
	var endpoint, status string
	var key, eClass, eMsg, eReqID *string
	var eCode, batch, cached *int64
	var notBefore int64
	var eBody []byte
	var x resultRow
	err := row.Scan(&r.ID, &r.JobID, &r.Line, &r.CustomID, &endpoint, &r.Model, &r.Body, (*[]byte)(&r.Metadata), &key,
		&status, &r.Attempts, &notBefore, &eClass, &eCode, &eMsg, &eBody,
		&eReqID, &batch, &x.code, &x.responseID, &x.providerID, &x.model, &x.raw,
		&x.content, &x.reasoning, &x.finish, &x.known, &x.prompt, &x.completion,
		&x.reasoningTokens, &x.cached, &x.total, &x.latency, &x.ttft, &x.created, &cached,
		&x.batch)
	if err != nil {
		return c, err
	}
	r.Endpoint, r.Status, r.CacheKey = jobs.Endpoint(endpoint), jobs.Status(status), deref(key)
	r.NotBefore = fromMillis(notBefore)
	c.Batch = deref(batch)
	if eClass != nil {
		c.Failure = &jobs.Failure{Class: jobs.ErrorClass(*eClass), StatusCode: int(deref(eCode)),
			Message: deref(eMsg), Body: eBody, RequestID: deref(eReqID)}
		c.NoStatusCode = eCode == nil
	}
	if x.code != nil {
		c.Result = x.result(r.ID)
		c.Cached, c.HasTTFT = deref(cached) == 1, x.ttft != nil
	}
	return c, nil
}

// attemptCursor walks the dump's attempts cursor beside its requests: of
// returns the attempts of one request, which must come in ascending order.
type attemptCursor struct {
	tx   pgx.Tx
	buf  []jobs.Attempt // fetched and not yet handed out
	done bool           // the cursor is at its end
}

// of returns the attempts of the request id.
func (c *attemptCursor) of(ctx context.Context, id int64) ([]jobs.Attempt, error) {
	var out []jobs.Attempt
	for {
		if len(c.buf) == 0 && !c.done {
			if err := c.fetch(ctx); err != nil {
				return nil, err
			}
		}
		if len(c.buf) == 0 || c.buf[0].RequestID > id {
			return out, nil
		}
		if c.buf[0].RequestID < id {
			return nil, fmt.Errorf("dump job: attempt of request %d, which the job does not have", c.buf[0].RequestID)
		}
		out, c.buf = append(out, c.buf[0]), c.buf[1:]
	}
}

func (c *attemptCursor) fetch(ctx context.Context) error {
	rows, err := c.tx.Query(ctx, fmt.Sprintf(`FETCH FORWARD %d FROM copy_attempts`, dumpAttemptsFetch))
	if err != nil {
		return fmt.Errorf("dump job: attempts: %w", err)
	}
	c.buf, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobs.Attempt, error) {
		var a jobs.Attempt
		var started, duration int64
		var class, msg *string
		var batch *int64
		err := row.Scan(&a.RequestID, &a.Number, &started, &duration, &a.StatusCode, &class, &msg, &batch)
		a.StartedAt, a.Duration = fromMillis(started), msDuration(duration)
		a.Class, a.Message, a.ProviderBatch = jobs.ErrorClass(deref(class)), deref(msg), deref(batch)
		return a, err
	})
	if err != nil {
		return fmt.Errorf("dump job: attempts: %w", err)
	}
	c.done = len(c.buf) < dumpAttemptsFetch
	return nil
}

// end checks that every attempt belonged to a request of the job.
func (c *attemptCursor) end(ctx context.Context) error {
	if len(c.buf) == 0 && !c.done {
		if err := c.fetch(ctx); err != nil {
			return err
		}
	}
	if len(c.buf) > 0 {
		return fmt.Errorf("dump job: attempt of request %d, which the job does not have", c.buf[0].RequestID)
	}
	return nil
}
