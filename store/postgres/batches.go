package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

var _ jobs.ProviderBatches = (*Store)(nil)

// inOpenBatch is true of a request (of the statement's table requests)
// that belongs to an open provider batch: running in it, which nothing but
// recording its answer and collecting the batch may change. A request
// whose batch is collected is an ordinary one again; most requests never
// were in a batch, and the NULL test spares them the lookup.
const inOpenBatch = `(requests.provider_batch IS NOT NULL AND EXISTS (SELECT 1 FROM provider_batches b
	WHERE b.id = requests.provider_batch AND b.state <> 'collected'))`

const batchColumns = `id, job_id, key, endpoint, model, requests, bytes, state, input_file_id, batch_id,
	output_file_id, error_file_id, provider_status, total, completed, failed, message, left_count,
	created_at, updated_at`

// CreateBatch stores b as a new batch and moves the requests ids, every one
// a pending request of b's active job, to running in it, in one
// transaction; otherwise it stores nothing and returns an error that
// matches jobs.ErrBatchChanged (jobs.ErrNotFound for a missing job).
func (s *Store) CreateBatch(ctx context.Context, b jobs.ProviderBatch, ids []int64) (jobs.ProviderBatch, error) {
	if err := distinctIDs(ids); err != nil {
		return b, fmt.Errorf("create batch: %w", err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return b, fmt.Errorf("create batch: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := activeJob(ctx, tx, b.JobID); err != nil {
		return b, fmt.Errorf("create batch: %w", err)
	}
	stored, err := insertBatch(ctx, tx, b, s.Now())
	if err != nil {
		return b, fmt.Errorf("create batch: %w", err)
	}
	tag, err := tx.Exec(ctx, `UPDATE requests SET status = 'running', provider_batch = $1
		WHERE job_id = $2 AND status = 'pending' AND id = ANY($3)`, stored.ID, stored.JobID, ids)
	if err != nil {
		return b, fmt.Errorf("create batch: %w", err)
	}
	if moved := int(tag.RowsAffected()); moved != len(ids) {
		return b, fmt.Errorf("create batch: %d of %d requests not pending: %w", len(ids)-moved, len(ids), jobs.ErrBatchChanged)
	}
	if err := tx.Commit(ctx); err != nil {
		return b, fmt.Errorf("create batch: commit: %w", err)
	}
	return stored, nil
}

// distinctIDs refuses an empty list and an id named twice: a caller's
// mistake, not a request that changed meanwhile.
func distinctIDs(ids []int64) error {
	if len(ids) == 0 {
		return errors.New("no requests")
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return fmt.Errorf("request %d named twice", sorted[i])
		}
	}
	return nil
}

// activeJob returns nil for an active job, an error matching
// jobs.ErrBatchChanged for another, and jobs.ErrNotFound for none. It
// locks the job's row, so that a cancel waits for the transaction.
func activeJob(ctx context.Context, tx pgx.Tx, jobID int64) error {
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM jobs WHERE id = $1 FOR SHARE`, jobID).Scan(&state)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("job %d: %w", jobID, jobs.ErrNotFound)
	case err != nil:
		return err
	case jobs.JobState(state) != jobs.JobActive:
		return fmt.Errorf("job is %s: %w", state, jobs.ErrBatchChanged)
	}
	return nil
}

// insertBatch stores b as a new batch made at now, and returns it as
// stored: with its id, state new, nothing of the provider's yet, and its
// times to the millisecond, as they are read back.
func insertBatch(ctx context.Context, tx pgx.Tx, b jobs.ProviderBatch, now time.Time) (jobs.ProviderBatch, error) {
	b = jobs.ProviderBatch{JobID: b.JobID, Key: b.Key, Endpoint: b.Endpoint, Model: b.Model,
		Requests: b.Requests, Bytes: b.Bytes, State: jobs.BatchNew, CreatedAt: fromMillis(millis(now))}
	b.UpdatedAt = b.CreatedAt
	err := tx.QueryRow(ctx, `INSERT INTO provider_batches (job_id, key, endpoint, model, requests, bytes,
		state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		b.JobID, b.Key, string(b.Endpoint), b.Model, b.Requests, b.Bytes, string(b.State),
		millis(b.CreatedAt), millis(b.UpdatedAt)).Scan(&b.ID)
	return b, err
}

// UpdateBatch stores b's state, provider ids, provider status, counts and
// message, with UpdatedAt now. Only CollectBatch collects a batch, and a
// collected batch stays collected (its requests are no longer its own):
// b's state is then not stored. A missing batch is jobs.ErrNotFound.
func (s *Store) UpdateBatch(ctx context.Context, b jobs.ProviderBatch) error {
	if !slices.Contains(batchStates, b.State) {
		return fmt.Errorf("update batch %d: state %q: %w", b.ID, b.State, jobs.ErrBadTransition)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE provider_batches SET
		state = CASE state WHEN 'collected' THEN state ELSE $1 END,
		input_file_id = $2, batch_id = $3, output_file_id = $4, error_file_id = $5, provider_status = $6,
		total = $7, completed = $8, failed = $9, message = $10, updated_at = $11
		WHERE id = $12 AND ($1 <> 'collected' OR state = 'collected')`,
		string(b.State), b.InputFileID, b.BatchID, b.OutputFileID, b.ErrorFileID, b.ProviderStatus,
		b.Counts.Total, b.Counts.Completed, b.Counts.Failed, b.Message, millis(s.Now()), b.ID)
	if err != nil {
		return fmt.Errorf("update batch %d: %w", b.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return s.notUpdated(ctx, b.ID)
	}
	return nil
}

// notUpdated says why UpdateBatch changed no row: the batch is missing, or
// it was to be collected.
func (s *Store) notUpdated(ctx context.Context, batchID int64) error {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM provider_batches WHERE id = $1`, batchID).Scan(&n); err != nil {
		return fmt.Errorf("update batch %d: %w", batchID, err)
	} else if n == 0 {
		return fmt.Errorf("update batch %d: %w", batchID, jobs.ErrNotFound)
	}
	return fmt.Errorf("update batch %d: only CollectBatch collects a batch: %w", batchID, jobs.ErrBadTransition)
}

// batchStates are the states the table's CHECK allows.
var batchStates = []jobs.BatchState{jobs.BatchNew, jobs.BatchUploaded, jobs.BatchSubmitted, jobs.BatchEnded,
	jobs.BatchCollected}

// Batches lists the job's provider batches, oldest first.
func (s *Store) Batches(ctx context.Context, jobID int64) ([]jobs.ProviderBatch, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+batchColumns+` FROM provider_batches WHERE job_id = $1 ORDER BY id`, jobID)
	if err != nil {
		return nil, fmt.Errorf("list batches: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobs.ProviderBatch, error) { return scanBatch(row) })
	if err != nil {
		return nil, fmt.Errorf("list batches: %w", err)
	}
	if list == nil {
		list = []jobs.ProviderBatch{}
	}
	return list, nil
}

func scanBatch(row scanner) (jobs.ProviderBatch, error) {
	var b jobs.ProviderBatch
	var endpoint, state string
	var created, updated int64
	err := row.Scan(&b.ID, &b.JobID, &b.Key, &endpoint, &b.Model, &b.Requests, &b.Bytes, &state, &b.InputFileID,
		&b.BatchID, &b.OutputFileID, &b.ErrorFileID, &b.ProviderStatus, &b.Counts.Total, &b.Counts.Completed,
		&b.Counts.Failed, &b.Message, &b.Left, &created, &updated)
	b.Endpoint, b.State = jobs.Endpoint(endpoint), jobs.BatchState(state)
	b.CreatedAt, b.UpdatedAt = fromMillis(created), fromMillis(updated)
	return b, err
}

// CollectBatch marks the batch collected and puts its requests still
// running in it back to pending, due now, with their attempt counts as
// they are; it returns how many, which it stores as the batch's Left. A
// collected batch is left as it is (0); a missing one is jobs.ErrNotFound.
// The batch's row is locked first, so that of two runners collecting it
// at once the second finds it collected.
func (s *Store) CollectBatch(ctx context.Context, batchID int64) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("collect batch %d: %w", batchID, err)
	}
	defer tx.Rollback(ctx)
	var state string
	err = tx.QueryRow(ctx, `SELECT state FROM provider_batches WHERE id = $1 FOR UPDATE`, batchID).Scan(&state)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, fmt.Errorf("collect batch %d: %w", batchID, jobs.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("collect batch %d: %w", batchID, err)
	case !jobs.BatchState(state).Open():
		return 0, nil
	}
	n, err := collectTx(ctx, tx, batchID, s.Now())
	if err != nil {
		return 0, fmt.Errorf("collect batch %d: %w", batchID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("collect batch %d: commit: %w", batchID, err)
	}
	return n, nil
}

// collectTx moves the batch's running requests to pending, due now, and
// marks it collected with their count.
func collectTx(ctx context.Context, tx pgx.Tx, batchID int64, now time.Time) (int, error) {
	tag, err := tx.Exec(ctx, `UPDATE requests SET status = 'pending', not_before = 0
		WHERE provider_batch = $1 AND status = 'running'`, batchID)
	if err != nil {
		return 0, err
	}
	n := tag.RowsAffected()
	_, err = tx.Exec(ctx, `UPDATE provider_batches SET state = 'collected', left_count = $1, updated_at = $2
		WHERE id = $3`, n, millis(now), batchID)
	return int(n), err
}

// requestColumns are what BatchRequests and PendingRequests read of a
// request, the body in the place of %s (body, or NULL to leave it out).
const requestColumns = `id, job_id, line, custom_id, endpoint, model, %s, metadata, cache_key, status, attempts,
	not_before`

// BatchRequests calls fn, in id order, for each request still running in
// the open batch, with its body when bodies is set. None when the batch is
// collected: a running request that names it was claimed since.
func (s *Store) BatchRequests(ctx context.Context, batchID int64, bodies bool, fn func(jobs.Request) error) error {
	body := "NULL::bytea"
	if bodies {
		body = "body"
	}
	return s.eachRequest(ctx, fmt.Sprintf("requests of batch %d", batchID),
		`SELECT `+fmt.Sprintf(requestColumns, body)+` FROM requests WHERE provider_batch = $1 AND status = 'running'
		AND EXISTS (SELECT 1 FROM provider_batches WHERE id = $1 AND state <> 'collected') ORDER BY id`,
		[]any{batchID}, fn)
}

// PendingRequests calls fn, in id order, for each pending request of the
// job, with its body.
func (s *Store) PendingRequests(ctx context.Context, jobID int64, fn func(jobs.Request) error) error {
	return s.eachRequest(ctx, "pending requests", `SELECT `+fmt.Sprintf(requestColumns, "body")+`
		FROM requests WHERE job_id = $1 AND status = 'pending' ORDER BY id`, []any{jobID}, fn)
}

// eachRequest calls fn for each request query reads (requestColumns), one
// row at a time, in one read-only transaction (a snapshot). It returns fn's
// first error as it is, and its own wrapped with what.
func (s *Store) eachRequest(ctx context.Context, what, query string, args []any, fn func(jobs.Request) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// scanRequest reads a row of requestColumns.
func scanRequest(row scanner) (jobs.Request, error) {
	var r jobs.Request
	var endpoint, status string
	var key *string
	var notBefore int64
	err := row.Scan(&r.ID, &r.JobID, &r.Line, &r.CustomID, &endpoint, &r.Model, &r.Body, (*[]byte)(&r.Metadata),
		&key, &status, &r.Attempts, &notBefore)
	r.Endpoint, r.Status, r.CacheKey = jobs.Endpoint(endpoint), jobs.Status(status), deref(key)
	r.NotBefore = fromMillis(notBefore)
	return r, err
}
