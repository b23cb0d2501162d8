package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/llmbatch/llmbatch/jobs"
)

// Records calls fn for every request of the job, in input order, with its
// result (succeeded) or its last error (failed, or pending after errors).
// It reads one consistent snapshot, so a run writing meanwhile is neither
// blocked nor seen half-way.
func (s *Store) Records(ctx context.Context, jobID int64, fn func(jobs.Record) error) error {
	return s.RecordsWith(ctx, jobID, jobs.RecordOptions{}, fn)
}

// RecordsWith is Records with each request's body too when opts.Bodies is
// set. Rows are read one at a time, so memory does not grow with the job.
func (s *Store) RecordsWith(ctx context.Context, jobID int64, opts jobs.RecordOptions, fn func(jobs.Record) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	defer tx.Rollback()
	body := "NULL"
	if opts.Bodies {
		body = "r.body"
	}
	rows, err := tx.QueryContext(ctx, `SELECT r.id, r.line, r.custom_id, r.endpoint, r.model, r.metadata, `+body+`,
		r.status, r.attempts, r.error_class, r.error_status_code, r.error_message, r.error_body,
		r.error_request_id, x.status_code, x.response_id, x.provider_request_id, x.model, x.raw, x.content, x.reasoning_content,
		x.finish_reason, x.usage_known, x.prompt_tokens, x.completion_tokens, x.reasoning_tokens,
		x.cached_tokens, x.total_tokens, x.latency_ms, x.ttft_ms, x.created_at, x.provider_batch
		FROM requests r LEFT JOIN results x ON x.request_id = r.id
		WHERE r.job_id = ? ORDER BY r.id`, jobID)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		rec, err := scanRecord(rows, jobID)
		if err != nil {
			return fmt.Errorf("read results: %w", err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return rows.Err()
}

func scanRecord(rows *sql.Rows, jobID int64) (jobs.Record, error) {
	r := jobs.Request{JobID: jobID}
	var endpoint, status string
	var eClass, eMsg, eReqID sql.NullString
	var eCode sql.NullInt64
	var eBody []byte
	var x resultRow
	err := rows.Scan(&r.ID, &r.Line, &r.CustomID, &endpoint, &r.Model, (*[]byte)(&r.Metadata), &r.Body,
		&status, &r.Attempts, &eClass, &eCode, &eMsg, &eBody,
		&eReqID, &x.code, &x.responseID, &x.providerID, &x.model, &x.raw, &x.content, &x.reasoning,
		&x.finish, &x.known, &x.prompt, &x.completion, &x.reasoningTokens,
		&x.cached, &x.total, &x.latency, &x.ttft, &x.created, &x.batch)
	if err != nil {
		return jobs.Record{}, err
	}
	r.Endpoint, r.Status = jobs.Endpoint(endpoint), jobs.Status(status)
	rec := jobs.Record{Request: r}
	if x.code.Valid {
		rec.Result = x.result(r.ID)
	}
	if eClass.Valid {
		rec.Failure = &jobs.Failure{Class: jobs.ErrorClass(eClass.String), StatusCode: int(eCode.Int64),
			Message: eMsg.String, Body: eBody, RequestID: eReqID.String}
	}
	return rec, nil
}

// resultRow holds the nullable columns of a LEFT JOINed result.
type resultRow struct {
	code, known, prompt, completion, reasoningTokens, cached, total, latency, ttft, created, batch sql.NullInt64
	responseID, providerID, model, content, reasoning, finish                                      sql.NullString
	raw                                                                                            []byte
}

func (x *resultRow) result(requestID int64) *jobs.Result {
	return &jobs.Result{
		RequestID:         requestID,
		StatusCode:        int(x.code.Int64),
		ResponseID:        x.responseID.String,
		ProviderRequestID: x.providerID.String,
		Model:             x.model.String,
		Raw:               x.raw,
		Content:           x.content.String,
		ReasoningContent:  x.reasoning.String,
		FinishReason:      x.finish.String,
		Usage: jobs.Usage{Known: x.known.Int64 == 1, PromptTokens: x.prompt.Int64,
			CompletionTokens: x.completion.Int64, ReasoningTokens: x.reasoningTokens.Int64,
			CachedTokens: x.cached.Int64, TotalTokens: x.total.Int64},
		Latency:       msDuration(x.latency.Int64),
		TTFT:          msDuration(x.ttft.Int64),
		CreatedAt:     fromMillis(x.created.Int64),
		ProviderBatch: x.batch.Int64,
	}
}
