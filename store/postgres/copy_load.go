package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

// LoadJob stores the job src yields as a new job, in one transaction. Each
// chunk of requests draws its ids from the requests' sequence first and
// hands them out in ascending order, so that ids follow lines as an
// import stores them (other runners' imports may take ids between them);
// then its requests, attempts and results go in by COPY, one each.
func (s *Store) LoadJob(ctx context.Context, src jobs.CopySource) (jobs.Job, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return jobs.Job{}, fmt.Errorf("load job: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	head := src.Head()
	job, err := loadJobRow(ctx, tx, head.Job)
	if err != nil {
		return job, err
	}
	l := &loader{tx: tx, jobID: job.ID}
	if l.batches, err = loadBatches(ctx, tx, job.ID, head.Batches); err != nil {
		return job, err
	}
	for {
		chunk, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return job, err
		}
		if err := l.load(ctx, chunk); err != nil {
			return job, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return job, fmt.Errorf("load job: commit: %w", err)
	}
	return job, nil
}

// loadJobRow stores the job's row, without a lock, and returns it with
// its id here.
func loadJobRow(ctx context.Context, tx pgx.Tx, job jobs.Job) (jobs.Job, error) {
	settings, err := json.Marshal(job.Settings)
	if err != nil {
		return job, fmt.Errorf("load job: settings: %w", err)
	}
	job.Lock, job.LockHeartbeat = jobs.LockOwner{}, time.Time{}
	err = tx.QueryRow(ctx, `INSERT INTO jobs (name, source, fingerprint, default_model, state, created_at, total,
		settings, last_end, last_end_at, last_end_message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		RETURNING id`, job.Name, job.Source, job.Fingerprint, job.DefaultModel, string(job.State), millis(job.CreatedAt),
		job.Total, string(settings), string(job.LastEnd), millis(job.LastEndAt), job.LastEndMessage).Scan(&job.ID)
	if isUniqueViolation(err) {
		return job, fmt.Errorf("load job %q: %w", job.Name, jobs.ErrJobExists)
	} else if err != nil {
		return job, fmt.Errorf("load job: %w", err)
	}
	return job, nil
}

// loadBatches stores the job's provider batches and returns their ids
// here by their ids in the source. A key the database holds already (the
// job was copied here before) takes the first free jobs.CopyKey of it.
func loadBatches(ctx context.Context, tx pgx.Tx, jobID int64, batches []jobs.ProviderBatch) (map[int64]int64, error) {
	ids := make(map[int64]int64, len(batches))
	for _, b := range batches {
		key, err := freeKey(ctx, tx, b.Key)
		if err != nil {
			return nil, err
		}
		var id int64
		err = tx.QueryRow(ctx, `INSERT INTO provider_batches (`+batchColumns[len("id, "):]+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
			RETURNING id`,
			jobID, key, string(b.Endpoint), b.Model, b.Requests, b.Bytes, string(b.State), b.InputFileID,
			b.BatchID, b.OutputFileID, b.ErrorFileID, b.ProviderStatus, b.Counts.Total, b.Counts.Completed,
			b.Counts.Failed, b.Message, b.Left, millis(b.CreatedAt), millis(b.UpdatedAt)).Scan(&id)
		if err != nil {
			return nil, fmt.Errorf("load job: batch %s: %w", b.Key, err)
		}
		ids[b.ID] = id
	}
	return ids, nil
}

// freeKey is key, or the first jobs.CopyKey of it the database does not
// hold. A taken key is looked up rather than tried: a failed INSERT would
// abort the whole transaction.
func freeKey(ctx context.Context, tx pgx.Tx, key string) (string, error) {
	cand := key
	for n := 1; ; n++ {
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM provider_batches WHERE key = $1)`, cand).Scan(&taken); err != nil {
			return "", fmt.Errorf("load job: batch %s: %w", key, err)
		}
		if !taken {
			return cand, nil
		}
		cand = jobs.CopyKey(key, n)
	}
}

// loader stores the chunks of requests of one job being loaded.
type loader struct {
	tx      pgx.Tx
	jobID   int64
	batches map[int64]int64 // this database's batch ids by the source's
}

// The columns a load COPYs into each table, in the order loadRows gives
// their values.
var (
	loadRequestColumns = []string{"id", "job_id", "line", "custom_id", "endpoint", "model", "body", "metadata",
		"cache_key", "status", "attempts", "not_before", "error_class", "error_status_code", "error_message",
		"error_body", "error_request_id", "provider_batch"}
	loadAttemptColumns = []string{"job_id", "request_id", "number", "started_at", "duration_ms", "status_code",
		"error_class", "message", "provider_batch"}
	loadResultColumns = []string{"request_id", "job_id", "status_code", "response_id", "provider_request_id", "model",
		"raw", "content", "reasoning_content", "finish_reason", "usage_known", "prompt_tokens", "completion_tokens",
		"reasoning_tokens", "cached_tokens", "total_tokens", "latency_ms", "ttft_ms", "created_at", "cached",
		"provider_batch"}
)

// load stores a chunk: its requests under ids drawn for it, then their
// attempts and results.
func (l *loader) load(ctx context.Context, chunk []jobs.CopyRequest) error {
	if len(chunk) == 0 {
		return nil
	}
	if err := jobs.CheckBatches(chunk, l.batches); err != nil {
		return err
	}
	ids, err := l.drawIDs(ctx, len(chunk))
	if err != nil {
		return err
	}
	if _, err := l.tx.CopyFrom(ctx, pgx.Identifier{"requests"}, loadRequestColumns, pgx.CopyFromSlice(len(chunk),
		func(i int) ([]any, error) { return l.requestRow(ids[i], &chunk[i]), nil })); err != nil {
		return fmt.Errorf("load job: requests of lines %d-%d: %w", chunk[0].Request.Line, chunk[len(chunk)-1].Request.Line, err)
	}
	var atts []attemptOf
	var results []int
	for i := range chunk {
		for j := range chunk[i].Attempts {
			atts = append(atts, attemptOf{ids[i], &chunk[i].Attempts[j]})
		}
		if chunk[i].Result != nil {
			results = append(results, i)
		}
	}
	if _, err := l.tx.CopyFrom(ctx, pgx.Identifier{"attempts"}, loadAttemptColumns, pgx.CopyFromSlice(len(atts),
		func(i int) ([]any, error) { return l.attemptRow(atts[i]), nil })); err != nil {
		return fmt.Errorf("load job: attempts: %w", err)
	}
	if _, err := l.tx.CopyFrom(ctx, pgx.Identifier{"results"}, loadResultColumns, pgx.CopyFromSlice(len(results),
		func(i int) ([]any, error) { return l.resultRow(ids[results[i]], &chunk[results[i]]), nil })); err != nil {
		return fmt.Errorf("load job: results: %w", err)
	}
	return nil
}

// drawIDs takes n ids from the requests' sequence, in ascending order.
func (l *loader) drawIDs(ctx context.Context, n int) ([]int64, error) {
	rows, err := l.tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence('requests', 'id')) FROM generate_series(1, $1)`, n)
	if err != nil {
		return nil, fmt.Errorf("load job: ids: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("load job: ids: %w", err)
	}
	if len(ids) != n {
		return nil, fmt.Errorf("load job: ids: %d drawn, want %d", len(ids), n)
	}
	slices.Sort(ids)
	return ids, nil
}

// attemptOf is an attempt with the id its request takes here.
type attemptOf struct {
	id int64
	a  *jobs.Attempt
}

// batch is the id here of the source's batch id, or NULL for none.
func (l *loader) batch(id int64) *int64 {
	if id == 0 {
		return nil
	}
	here := l.batches[id]
	return &here
}

// requestRow is the values of c's row for loadRequestColumns, under id.
func (l *loader) requestRow(id int64, c *jobs.CopyRequest) []any {
	r := &c.Request
	var class, msg, reqID *string
	var code *int32
	var body []byte
	if f := c.Failure; f != nil {
		cl, m := string(f.Class), f.Message
		class, msg, body, reqID = &cl, &m, f.Body, ptrUnlessEmpty(f.RequestID)
		if !c.NoStatusCode {
			sc := int32(f.StatusCode)
			code = &sc
		}
	}
	return []any{id, l.jobID, int64(r.Line), r.CustomID, string(r.Endpoint), r.Model, nonNil(r.Body),
		[]byte(r.Metadata), ptrUnlessEmpty(r.CacheKey), string(r.Status), int32(r.Attempts), millis(r.NotBefore),
		class, code, msg, body, reqID, l.batch(c.Batch)}
}

func (l *loader) attemptRow(at attemptOf) []any {
	a := at.a
	return []any{l.jobID, at.id, int32(a.Number), millis(a.StartedAt), a.Duration.Milliseconds(), int32(a.StatusCode),
		ptrUnlessEmpty(string(a.Class)), ptrUnlessEmpty(a.Message), l.batch(a.ProviderBatch)}
}

// resultRow is the values of c's result for loadResultColumns, for the
// request id.
func (l *loader) resultRow(id int64, c *jobs.CopyRequest) []any {
	x, u := c.Result, c.Result.Usage
	var ttft *int64
	if c.HasTTFT {
		ms := x.TTFT.Milliseconds()
		ttft = &ms
	}
	return []any{id, l.jobID, int32(x.StatusCode), x.ResponseID, x.ProviderRequestID, x.Model, nonNil(x.Raw),
		x.Content, x.ReasoningContent, x.FinishReason, flag(u.Known), u.PromptTokens, u.CompletionTokens,
		u.ReasoningTokens, u.CachedTokens, u.TotalTokens, x.Latency.Milliseconds(), ttft, millis(x.CreatedAt),
		flag(c.Cached), l.batch(x.ProviderBatch)}
}

// flag is b as the smallint 0/1 the schema keeps flags in.
func flag(b bool) int16 {
	if b {
		return 1
	}
	return 0
}
