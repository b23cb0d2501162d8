package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

// recordsChunk is how many records RecordsWith fetches from its cursor at
// a time: what it holds in memory at most, whatever the job's size.
const recordsChunk = 1000

// Records calls fn for every request of the job, in input order, with its
// result (succeeded) or its last error (failed, or pending after errors).
// It reads one consistent snapshot, so runners writing meanwhile are
// neither blocked nor seen half-way.
func (s *Store) Records(ctx context.Context, jobID int64, fn func(jobs.Record) error) error {
	return s.RecordsWith(ctx, jobID, jobs.RecordOptions{}, fn)
}

// RecordsWith is Records with each request's body too when opts.Bodies is
// set. It reads through a server-side cursor, recordsChunk rows a fetch,
// so that neither this process nor the connection holds the whole job:
// one query, one sort at most, and the snapshot of the cursor's
// transaction throughout.
func (s *Store) RecordsWith(ctx context.Context, jobID int64, opts jobs.RecordOptions, fn func(jobs.Record) error) error {
	tx, err := s.pool.BeginTx(ctx, snapshot)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	defer tx.Rollback(context.Background())
	body := "NULL::bytea"
	if opts.Bodies {
		body = "r.body"
	}
	// In input order: ids follow lines, as the import stores them.
	if _, err := tx.Exec(ctx, `DECLARE records NO SCROLL CURSOR FOR
		SELECT r.id, r.line, r.custom_id, r.endpoint, r.model, r.metadata, `+body+`,
		r.status, r.attempts, r.error_class, r.error_status_code, r.error_message, r.error_body,
		r.error_request_id, x.status_code, x.response_id, x.provider_request_id, x.model, x.raw, x.content,
		x.reasoning_content, x.finish_reason, x.usage_known, x.prompt_tokens, x.completion_tokens,
		x.reasoning_tokens, x.cached_tokens, x.total_tokens, x.latency_ms, x.ttft_ms, x.created_at, x.provider_batch
		FROM requests r LEFT JOIN results x ON x.request_id = r.id
		WHERE r.job_id = $1 ORDER BY r.id`, jobID); err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	for {
		n, err := fetchRecords(ctx, tx, jobID, fn)
		if err != nil || n < recordsChunk {
			return err
		}
	}
}

// fetchRecords calls fn for each record of the cursor's next chunk and
// returns how many there were; fewer than recordsChunk means the end.
func fetchRecords(ctx context.Context, tx pgx.Tx, jobID int64, fn func(jobs.Record) error) (int, error) {
	rows, err := tx.Query(ctx, fmt.Sprintf(`FETCH FORWARD %d FROM records`, recordsChunk))
	if err != nil {
		return 0, fmt.Errorf("read results: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		rec, err := scanRecord(rows, jobID)
		if err != nil {
			return n, fmt.Errorf("read results: %w", err)
		}
		n++
		if err := fn(rec); err != nil {
			return n, err
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read results: %w", err)
	}
	return n, nil
}

func scanRecord(row scanner, jobID int64) (jobs.Record, error) {
	r := jobs.Request{JobID: jobID}
	var endpoint, status string
	var eClass, eMsg, eReqID *string
	var eCode *int64
	var eBody []byte
	var x resultRow
	err := row.Scan(&r.ID, &r.Line, &r.CustomID, &endpoint, &r.Model, (*[]byte)(&r.Metadata), &r.Body,
		&status, &r.Attempts, &eClass, &eCode, &eMsg, &eBody,
		&eReqID, &x.code, &x.responseID, &x.providerID, &x.model, &x.raw, &x.content, &x.reasoning,
		&x.finish, &x.known, &x.prompt, &x.completion, &x.reasoningTokens,
		&x.cached, &x.total, &x.latency, &x.ttft, &x.created, &x.batch)
	if err != nil {
		return jobs.Record{}, err
	}
	r.Endpoint, r.Status = jobs.Endpoint(endpoint), jobs.Status(status)
	rec := jobs.Record{Request: r}
	if x.code != nil {
		rec.Result = x.result(r.ID)
	}
	if eClass != nil {
		rec.Failure = &jobs.Failure{Class: jobs.ErrorClass(*eClass), StatusCode: int(deref(eCode)),
			Message: deref(eMsg), Body: eBody, RequestID: deref(eReqID)}
	}
	return rec, nil
}

// resultRow holds the columns of a LEFT JOINed result, nil where there is
// none.
type resultRow struct {
	code, known, prompt, completion, reasoningTokens, cached, total, latency, ttft, created, batch *int64
	responseID, providerID, model, content, reasoning, finish                                      *string
	raw                                                                                            []byte
}

func (x *resultRow) result(requestID int64) *jobs.Result {
	return &jobs.Result{
		RequestID:         requestID,
		StatusCode:        int(deref(x.code)),
		ResponseID:        deref(x.responseID),
		ProviderRequestID: deref(x.providerID),
		Model:             deref(x.model),
		Raw:               x.raw,
		Content:           deref(x.content),
		ReasoningContent:  deref(x.reasoning),
		FinishReason:      deref(x.finish),
		Usage: jobs.Usage{Known: deref(x.known) == 1, PromptTokens: deref(x.prompt),
			CompletionTokens: deref(x.completion), ReasoningTokens: deref(x.reasoningTokens),
			CachedTokens: deref(x.cached), TotalTokens: deref(x.total)},
		Latency:       msDuration(deref(x.latency)),
		TTFT:          msDuration(deref(x.ttft)),
		CreatedAt:     fromMillis(deref(x.created)),
		ProviderBatch: deref(x.batch),
	}
}
