package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

// insertAttempts inserts one attempt a row of its arrays: one statement
// of one shape whatever the number of rows, so that it is prepared once
// per connection.
const insertAttempts = `INSERT INTO attempts (job_id, request_id, number, started_at, duration_ms, status_code,
	error_class, message, provider_batch)
	SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[], $6::int[],
		$7::text[], $8::text[], $9::bigint[])`

// insertResults inserts one result a row of its arrays.
const insertResults = `INSERT INTO results (request_id, job_id, status_code, response_id, provider_request_id,
	model, raw, content, reasoning_content, finish_reason, usage_known, prompt_tokens, completion_tokens,
	reasoning_tokens, cached_tokens, total_tokens, latency_ms, ttft_ms, created_at, provider_batch)
	SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[],
		$6::text[], $7::bytea[], $8::text[], $9::text[], $10::text[], $11::smallint[], $12::bigint[], $13::bigint[],
		$14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[])`

// insertRows inserts the attempts and results of the outcomes that
// applied, in one round trip.
func insertRows(ctx context.Context, tx pgx.Tx, applied []*jobs.Outcome) error {
	var a attemptCols
	var r resultCols
	for _, o := range applied {
		batch, _ := outcomeBatch(o)
		if o.Attempt != nil {
			a.add(o, batch)
		}
		if o.Next == jobs.StatusSucceeded {
			r.add(&o.Request, o.Result, batch)
		}
	}
	b := &pgx.Batch{}
	if len(a.job) > 0 {
		b.Queue(insertAttempts, a.job, a.request, a.number, a.started, a.duration, a.code, a.class, a.message, a.batch)
	}
	if len(r.request) > 0 {
		b.Queue(insertResults, r.request, r.job, r.code, r.responseID, r.providerRequestID, r.model, r.raw,
			r.content, r.reasoning, r.finish, r.known, r.prompt, r.completion, r.reasoningTokens, r.cached,
			r.total, r.latency, r.ttft, r.created, r.batch)
	}
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

// attemptCols are the columns of insertAttempts, one slice each.
type attemptCols struct {
	job, request, started, duration []int64
	number, code                    []int32
	class, message                  []*string
	batch                           []*int64
}

func (c *attemptCols) add(o *jobs.Outcome, batch int64) {
	a := o.Attempt
	c.job = append(c.job, o.Request.JobID)
	c.request = append(c.request, o.Request.ID)
	c.number = append(c.number, int32(a.Number))
	c.started = append(c.started, millis(a.StartedAt))
	c.duration = append(c.duration, a.Duration.Milliseconds())
	c.code = append(c.code, int32(a.StatusCode))
	c.class = append(c.class, ptrUnlessEmpty(string(a.Class)))
	c.message = append(c.message, ptrUnlessEmpty(a.Message))
	c.batch = append(c.batch, batchID(batch))
}

// resultCols are the columns of insertResults, one slice each.
type resultCols struct {
	request, job                                                []int64
	code                                                        []int32
	responseID, providerRequestID, model, content, reasoning    []string
	finish                                                      []string
	raw                                                         [][]byte
	known                                                       []int16
	prompt, completion, reasoningTokens, cached, total, latency []int64
	created                                                     []int64
	ttft, batch                                                 []*int64
}

func (c *resultCols) add(r *jobs.Request, res *jobs.Result, batch int64) {
	u := res.Usage
	var known int16
	if u.Known {
		known = 1
	}
	var ttft *int64
	if res.TTFT > 0 {
		ms := res.TTFT.Milliseconds()
		ttft = &ms
	}
	c.request = append(c.request, r.ID)
	c.job = append(c.job, r.JobID)
	c.code = append(c.code, int32(res.StatusCode))
	c.responseID = append(c.responseID, res.ResponseID)
	c.providerRequestID = append(c.providerRequestID, res.ProviderRequestID)
	c.model = append(c.model, res.Model)
	c.raw = append(c.raw, nonNil(res.Raw))
	c.content = append(c.content, res.Content)
	c.reasoning = append(c.reasoning, res.ReasoningContent)
	c.finish = append(c.finish, res.FinishReason)
	c.known = append(c.known, known)
	c.prompt = append(c.prompt, u.PromptTokens)
	c.completion = append(c.completion, u.CompletionTokens)
	c.reasoningTokens = append(c.reasoningTokens, u.ReasoningTokens)
	c.cached = append(c.cached, u.CachedTokens)
	c.total = append(c.total, u.TotalTokens)
	c.latency = append(c.latency, res.Latency.Milliseconds())
	c.ttft = append(c.ttft, ttft)
	c.created = append(c.created, millis(res.CreatedAt))
	c.batch = append(c.batch, batchID(batch))
}

// batchID is &id, or nil (NULL: online) for 0.
func batchID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// nonNil is b, or an empty slice for nil: raw is NOT NULL, as SQLite
// stores a nil blob as an empty one.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
