package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// LoadJob stores the job src yields as a new job, in one transaction of
// the writer. Its requests take the ids after the largest in the
// database, in src's order (no other writer can take them meanwhile: the
// transaction holds SQLite's write lock from its start), so that ids
// follow lines as an import stores them; attempts and results then name
// them without a lookup.
func (s *Store) LoadJob(ctx context.Context, src jobs.CopySource) (jobs.Job, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return jobs.Job{}, fmt.Errorf("load job: %w", err)
	}
	defer tx.Rollback()
	head := src.Head()
	job, err := loadJobRow(ctx, tx, head.Job)
	if err != nil {
		return job, err
	}
	l := &loader{tx: tx, jobID: job.ID}
	if l.batches, err = loadBatches(ctx, tx, job.ID, head.Batches); err != nil {
		return job, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) + 1 FROM requests`).Scan(&l.nextID); err != nil {
		return job, fmt.Errorf("load job: %w", err)
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
	if err := tx.Commit(); err != nil {
		return job, fmt.Errorf("load job: commit: %w", err)
	}
	return job, nil
}

// loadJobRow stores the job's row, without a lock, and returns it with
// its id here.
func loadJobRow(ctx context.Context, tx *sql.Tx, job jobs.Job) (jobs.Job, error) {
	settings, err := json.Marshal(job.Settings)
	if err != nil {
		return job, fmt.Errorf("load job: settings: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO jobs (name, source, fingerprint, default_model, state, created_at,
		total, settings, last_end, last_end_at, last_end_message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		job.Name, job.Source, job.Fingerprint, job.DefaultModel, string(job.State), millis(job.CreatedAt),
		job.Total, string(settings), string(job.LastEnd), millis(job.LastEndAt), job.LastEndMessage)
	if isUniqueViolation(err) {
		return job, fmt.Errorf("load job %q: %w", job.Name, jobs.ErrJobExists)
	} else if err != nil {
		return job, fmt.Errorf("load job: %w", err)
	}
	job.Lock, job.LockHeartbeat = jobs.LockOwner{}, time.Time{}
	job.ID, err = res.LastInsertId()
	return job, err
}

// loadBatches stores the job's provider batches and returns their ids
// here by their ids in the source. A key the database holds already (the
// job was copied here before) takes the first free jobs.CopyKey of it.
func loadBatches(ctx context.Context, tx *sql.Tx, jobID int64, batches []jobs.ProviderBatch) (map[int64]int64, error) {
	ids := make(map[int64]int64, len(batches))
	for _, b := range batches {
		key, err := freeKey(ctx, tx, b.Key)
		if err != nil {
			return nil, err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO provider_batches (`+batchColumns[len("id, "):]+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			jobID, key, string(b.Endpoint), b.Model, b.Requests, b.Bytes, string(b.State), b.InputFileID,
			b.BatchID, b.OutputFileID, b.ErrorFileID, b.ProviderStatus, b.Counts.Total, b.Counts.Completed,
			b.Counts.Failed, b.Message, b.Left, millis(b.CreatedAt), millis(b.UpdatedAt))
		if err != nil {
			return nil, fmt.Errorf("load job: batch %s: %w", b.Key, err)
		}
		if ids[b.ID], err = res.LastInsertId(); err != nil {
			return nil, fmt.Errorf("load job: batch %s: %w", b.Key, err)
		}
	}
	return ids, nil
}

// freeKey is key, or the first jobs.CopyKey of it the database does not
// hold.
func freeKey(ctx context.Context, tx *sql.Tx, key string) (string, error) {
	cand := key
	for n := 1; ; n++ {
		var taken int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM provider_batches WHERE key = ?`, cand).Scan(&taken); err != nil {
			return "", fmt.Errorf("load job: batch %s: %w", key, err)
		}
		if taken == 0 {
			return cand, nil
		}
		cand = jobs.CopyKey(key, n)
	}
}

// loader stores the chunks of requests of one job being loaded.
type loader struct {
	tx      *sql.Tx
	jobID   int64
	batches map[int64]int64 // this database's batch ids by the source's
	nextID  int64           // the id the next request takes
}

// The statements a load inserts its rows with, over any number of rows.
var (
	loadRequests = rowsStmt{head: `INSERT INTO requests (id, job_id, line, custom_id, endpoint, model, body, metadata,
		cache_key, status, attempts, not_before, error_class, error_status_code, error_message, error_body,
		error_request_id, provider_batch) VALUES `, cols: 18}
	loadAttempts = rowsStmt{head: `INSERT INTO attempts (job_id, request_id, number, started_at, duration_ms,
		status_code, error_class, message, provider_batch) VALUES `, cols: 9}
	loadResults = rowsStmt{head: `INSERT INTO results (` + resultColumns + `, cached, provider_batch) VALUES `, cols: 21}
)

// load stores a chunk: its requests under the next ids, then their
// attempts and results.
func (l *loader) load(ctx context.Context, chunk []jobs.CopyRequest) error {
	if err := jobs.CheckBatches(chunk, l.batches); err != nil {
		return err
	}
	first := l.nextID
	l.nextID += int64(len(chunk))
	if err := execRows(ctx, l.tx, loadRequests, len(chunk), func(args []any, i int) []any {
		return l.requestArgs(args, first+int64(i), &chunk[i])
	}); err != nil {
		return fmt.Errorf("load job: requests of lines %d-%d: %w", chunk[0].Request.Line, chunk[len(chunk)-1].Request.Line, err)
	}
	var atts []attemptOf
	var results []int
	for i := range chunk {
		for j := range chunk[i].Attempts {
			atts = append(atts, attemptOf{first + int64(i), &chunk[i].Attempts[j]})
		}
		if chunk[i].Result != nil {
			results = append(results, i)
		}
	}
	if err := execRows(ctx, l.tx, loadAttempts, len(atts), func(args []any, i int) []any {
		a := atts[i].a
		return append(args, l.jobID, atts[i].id, a.Number, millis(a.StartedAt), a.Duration.Milliseconds(),
			a.StatusCode, nullString(string(a.Class)), nullString(a.Message), l.batch(a.ProviderBatch))
	}); err != nil {
		return fmt.Errorf("load job: attempts: %w", err)
	}
	if err := execRows(ctx, l.tx, loadResults, len(results), func(args []any, i int) []any {
		k := results[i]
		return l.resultArgs(args, first+int64(k), &chunk[k])
	}); err != nil {
		return fmt.Errorf("load job: results: %w", err)
	}
	return nil
}

// attemptOf is an attempt with the id its request takes here.
type attemptOf struct {
	id int64
	a  *jobs.Attempt
}

// batch is the id here of the source's batch id, or NULL for none.
func (l *loader) batch(id int64) any {
	if id == 0 {
		return nil
	}
	return l.batches[id]
}

// requestArgs appends the values of c's row for loadRequests, under id.
func (l *loader) requestArgs(args []any, id int64, c *jobs.CopyRequest) []any {
	r := &c.Request
	var class, code, msg, body, reqID any
	if f := c.Failure; f != nil {
		class, msg, body, reqID = string(f.Class), f.Message, nullBytes(f.Body), nullString(f.RequestID)
		if !c.NoStatusCode {
			code = f.StatusCode
		}
	}
	return append(args, id, l.jobID, r.Line, r.CustomID, string(r.Endpoint), r.Model, nonNil(r.Body),
		nullBytes(r.Metadata), nullString(r.CacheKey), string(r.Status), r.Attempts, millis(r.NotBefore),
		class, code, msg, body, reqID, l.batch(c.Batch))
}

// resultArgs appends the values of c's result for loadResults, for the
// request id.
func (l *loader) resultArgs(args []any, id int64, c *jobs.CopyRequest) []any {
	x, u := c.Result, c.Result.Usage
	var ttft any
	if c.HasTTFT {
		ttft = x.TTFT.Milliseconds()
	}
	return append(args, id, l.jobID, x.StatusCode, x.ResponseID, x.ProviderRequestID, x.Model, nonNil(x.Raw),
		x.Content, x.ReasoningContent, x.FinishReason, u.Known, u.PromptTokens, u.CompletionTokens,
		u.ReasoningTokens, u.CachedTokens, u.TotalTokens, x.Latency.Milliseconds(), ttft, millis(x.CreatedAt),
		c.Cached, l.batch(x.ProviderBatch))
}

// nonNil is b, or an empty slice for nil: a NOT NULL column's empty value.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
