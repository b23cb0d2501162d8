package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/llmbatch/llmbatch/jobs"
)

var _ jobs.JobCopier = (*Store)(nil)

// dumpChunk and dumpChunkBytes bound a chunk of a dump, by requests and
// by the bytes of their bodies and answers: what a copy holds in memory
// is a few chunks, whatever the job's size.
const (
	dumpChunk      = 1000
	dumpChunkBytes = 16 << 20
)

// DumpJob reads the job, its provider batches, and its requests in input
// order, each with its attempts and its result, in one read transaction
// of the reader pool (one snapshot: a run writing meanwhile is not
// waited for, nor seen half-way), and hands them to fn a chunk at a time.
// Two cursors walk the job side by side: its requests joined with their
// results, and its attempts ordered by request, merged as they go.
func (s *Store) DumpJob(ctx context.Context, jobID int64, fn func(jobs.CopyPart) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("dump job: %w", err)
	}
	defer tx.Rollback()
	head, err := dumpHead(ctx, tx, jobID)
	if err != nil {
		return err
	}
	if err := fn(jobs.CopyPart{Head: &head}); err != nil {
		return err
	}
	return dumpRequests(ctx, tx, jobID, fn)
}

// dumpHead reads the job's row and its provider batches.
func dumpHead(ctx context.Context, tx *sql.Tx, jobID int64) (jobs.CopyHead, error) {
	var head jobs.CopyHead
	job, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, jobID))
	if errors.Is(err, sql.ErrNoRows) {
		return head, fmt.Errorf("dump job %d: %w", jobID, jobs.ErrNotFound)
	} else if err != nil {
		return head, fmt.Errorf("dump job: %w", err)
	}
	head.Job = job
	rows, err := tx.QueryContext(ctx, `SELECT `+batchColumns+` FROM provider_batches WHERE job_id = ? ORDER BY id`, jobID)
	if err != nil {
		return head, fmt.Errorf("dump job: batches: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		b, err := scanBatch(rows)
		if err != nil {
			return head, fmt.Errorf("dump job: batches: %w", err)
		}
		head.Batches = append(head.Batches, b)
	}
	return head, rows.Err()
}

// dumpColumns are what dumpRequests reads of a request and its result
// (x, NULL where there is none), in scanDumped's order.
const dumpColumns = `r.id, r.line, r.custom_id, r.endpoint, r.model, r.body, r.metadata, r.cache_key, r.status,
	r.attempts, r.not_before, r.error_class, r.error_status_code, r.error_message, r.error_body,
	r.error_request_id, r.provider_batch, x.status_code, x.response_id, x.provider_request_id, x.model, x.raw,
	x.content, x.reasoning_content, x.finish_reason, x.usage_known, x.prompt_tokens, x.completion_tokens,
	x.reasoning_tokens, x.cached_tokens, x.total_tokens, x.latency_ms, x.ttft_ms, x.created_at, x.cached,
	x.provider_batch`

// dumpRequests hands fn the job's requests in chunks.
func dumpRequests(ctx context.Context, tx *sql.Tx, jobID int64, fn func(jobs.CopyPart) error) error {
	rows, err := tx.QueryContext(ctx, `SELECT `+dumpColumns+`
		FROM requests r LEFT JOIN results x ON x.request_id = r.id WHERE r.job_id = ? ORDER BY r.id`, jobID)
	if err != nil {
		return fmt.Errorf("dump job: requests: %w", err)
	}
	defer rows.Close()
	atts, err := newAttemptCursor(ctx, tx, jobID)
	if err != nil {
		return err
	}
	defer atts.close()
	chunk, size := make([]jobs.CopyRequest, 0, dumpChunk), 0
	for rows.Next() {
		r, err := scanDumped(rows, jobID)
		if err != nil {
			return fmt.Errorf("dump job: requests: %w", err)
		}
		if r.Attempts, err = atts.of(r.Request.ID); err != nil {
			return err
		}
		chunk, size = append(chunk, r), size+r.Size()
		if len(chunk) == dumpChunk || size >= dumpChunkBytes {
			if err := fn(jobs.CopyPart{Requests: chunk}); err != nil {
				return err
			}
			chunk, size = make([]jobs.CopyRequest, 0, dumpChunk), 0
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("dump job: requests: %w", err)
	}
	if err := atts.end(); err != nil {
		return err
	}
	if len(chunk) == 0 {
		return nil
	}
	return fn(jobs.CopyPart{Requests: chunk})
}

// scanDumped reads a row of dumpColumns.
func scanDumped(rows *sql.Rows, jobID int64) (jobs.CopyRequest, error) {
	var c jobs.CopyRequest
	r := &c.Request
	r.JobID = jobID
	var endpoint, status string
	var key, eClass, eMsg, eReqID sql.NullString
	var eCode, batch, notBefore, cached sql.NullInt64
	var eBody []byte
	var x resultRow
	err := rows.Scan(&r.ID, &r.Line, &r.CustomID, &endpoint, &r.Model, &r.Body, (*[]byte)(&r.Metadata), &key, &status,
		&r.Attempts, &notBefore, &eClass, &eCode, &eMsg, &eBody,
		&eReqID, &batch, &x.code, &x.responseID, &x.providerID, &x.model, &x.raw,
		&x.content, &x.reasoning, &x.finish, &x.known, &x.prompt, &x.completion,
		&x.reasoningTokens, &x.cached, &x.total, &x.latency, &x.ttft, &x.created, &cached,
		&x.batch)
	if err != nil {
		return c, err
	}
	r.Endpoint, r.Status, r.CacheKey = jobs.Endpoint(endpoint), jobs.Status(status), key.String
	r.NotBefore = fromMillis(notBefore.Int64)
	c.Batch = batch.Int64
	if eClass.Valid {
		c.Failure = &jobs.Failure{Class: jobs.ErrorClass(eClass.String), StatusCode: int(eCode.Int64),
			Message: eMsg.String, Body: eBody, RequestID: eReqID.String}
		c.NoStatusCode = !eCode.Valid
	}
	if x.code.Valid {
		c.Result = x.result(r.ID)
		c.Cached, c.HasTTFT = cached.Int64 == 1, x.ttft.Valid
	}
	return c, nil
}

// attemptCursor walks a job's attempts in request order, beside the
// requests' cursor: of returns those of one request, which must come in
// ascending order.
type attemptCursor struct {
	rows *sql.Rows
	next *jobs.Attempt // read ahead: the first attempt of a later request
	done bool
}

func newAttemptCursor(ctx context.Context, tx *sql.Tx, jobID int64) (*attemptCursor, error) {
	rows, err := tx.QueryContext(ctx, `SELECT request_id, number, started_at, duration_ms, status_code,
		error_class, message, provider_batch FROM attempts WHERE job_id = ? ORDER BY request_id, id`, jobID)
	if err != nil {
		return nil, fmt.Errorf("dump job: attempts: %w", err)
	}
	return &attemptCursor{rows: rows}, nil
}

// of returns the attempts of the request id.
func (c *attemptCursor) of(id int64) ([]jobs.Attempt, error) {
	var out []jobs.Attempt
	for {
		if c.next == nil && !c.done {
			if err := c.read(); err != nil {
				return nil, err
			}
		}
		if c.next == nil || c.next.RequestID > id {
			return out, nil
		}
		if c.next.RequestID < id {
			return nil, fmt.Errorf("dump job: attempt of request %d, which the job does not have", c.next.RequestID)
		}
		out, c.next = append(out, *c.next), nil
	}
}

func (c *attemptCursor) read() error {
	if !c.rows.Next() {
		c.done = true
		if err := c.rows.Err(); err != nil {
			return fmt.Errorf("dump job: attempts: %w", err)
		}
		return nil
	}
	var a jobs.Attempt
	var started, duration int64
	var class, msg sql.NullString
	var batch sql.NullInt64
	if err := c.rows.Scan(&a.RequestID, &a.Number, &started, &duration, &a.StatusCode, &class, &msg, &batch); err != nil {
		return fmt.Errorf("dump job: attempts: %w", err)
	}
	a.StartedAt, a.Duration = fromMillis(started), msDuration(duration)
	a.Class, a.Message, a.ProviderBatch = jobs.ErrorClass(class.String), msg.String, batch.Int64
	c.next = &a
	return nil
}

// end checks that every attempt belonged to a request of the job.
func (c *attemptCursor) end() error {
	if c.next == nil && !c.done {
		if err := c.read(); err != nil {
			return err
		}
	}
	if c.next != nil {
		return fmt.Errorf("dump job: attempt of request %d, which the job does not have", c.next.RequestID)
	}
	return nil
}

func (c *attemptCursor) close() { c.rows.Close() }
