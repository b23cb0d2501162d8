package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/llmbatch/llmbatch/jobs"
)

// Summary is a job's counts and usage as they stood at one moment, read
// in two steps so that a run need not wait for the slow one: BeginSummary
// fixes the moment (a read transaction of the reader pool, which sees what
// was committed before it and nothing after) and reads the cheap figures;
// Finish adds the usage per model, a pass over every result, while the run
// already works. Figures a run's progress adds to its own counts must come
// from before its first outcome, which is what the snapshot gives.
type Summary struct {
	s     *Store
	tx    *sql.Tx
	jobID int64
	stats jobs.Stats
}

// BeginSummary reads the job and its counts by status (an index-only pass),
// with how many were answered from the cache and how many are running in
// open provider batches, in a new read transaction that Finish or Close
// ends.
func (s *Store) BeginSummary(ctx context.Context, jobID int64) (jobs.Summary, error) {
	return s.beginSummary(ctx, jobID)
}

func (s *Store) beginSummary(ctx context.Context, jobID int64) (*Summary, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	sum := &Summary{s: s, tx: tx, jobID: jobID}
	row := tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, jobID)
	if sum.stats.Job, err = scanJob(row); err == sql.ErrNoRows {
		tx.Rollback()
		return nil, jobs.ErrNotFound
	} else if err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("summary: %w", err)
	}
	if sum.stats.Counts, err = s.counts(ctx, tx, jobID); err != nil {
		tx.Rollback()
		return nil, err
	}
	if sum.stats.Cached, err = s.cachedCount(ctx, tx, jobID); err != nil {
		tx.Rollback()
		return nil, err
	}
	if sum.stats.InBatches, err = inBatches(ctx, tx, jobID); err != nil {
		tx.Rollback()
		return nil, err
	}
	return sum, nil
}

// inBatchesQuery counts the running requests of the open batches of the
// job ?.
const inBatchesQuery = `SELECT count(*) FROM provider_batches b
	JOIN requests q ON q.provider_batch = b.id AND q.status = 'running'
	WHERE b.job_id = ? AND b.state != 'collected'`

// inBatches counts the job's running requests that are in its open
// provider batches: from the batches, through requests_provider_batch.
func inBatches(ctx context.Context, q querier, jobID int64) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, inBatchesQuery, jobID).Scan(&n); err != nil {
		return 0, fmt.Errorf("stats: in batches: %w", err)
	}
	return n, nil
}

// Counts is what BeginSummary read: the job, its counts and how many were
// answered from the cache; no usage yet.
func (sum *Summary) Counts() jobs.Stats { return sum.stats }

// Finish adds the usage per model and in all, with the results that
// reported none (results answered from the cache left out, as Stats does),
// as of the summary's moment, and ends the transaction.
func (sum *Summary) Finish(ctx context.Context) (jobs.Stats, error) {
	defer sum.Close()
	err := sum.addUsage(ctx)
	return sum.stats, err
}

// addUsage reads the usage per model and in all into the summary.
func (sum *Summary) addUsage(ctx context.Context) error {
	models, err := sum.s.modelUsage(ctx, sum.tx, sum.jobID)
	if err != nil {
		return err
	}
	sum.stats.Models = models
	sum.stats.Usage, sum.stats.ResultsWithoutUsage = totalUsage(models)
	return nil
}

// CountAttempts adds the attempts made (Stats.Attempts) as of the
// summary's moment; Finish then keeps them.
func (sum *Summary) CountAttempts(ctx context.Context) error {
	if err := sum.tx.QueryRowContext(ctx, `SELECT count(*) FROM attempts WHERE job_id = ?`, sum.jobID).Scan(&sum.stats.Attempts); err != nil {
		return fmt.Errorf("summary: attempts: %w", err)
	}
	return nil
}

// Close ends the summary's transaction; safe after Finish.
func (sum *Summary) Close() { _ = sum.tx.Rollback() }

// OpenModels lists, in name order, the models the job's requests that are
// not yet final (pending or running) ask for.
func (s *Store) OpenModels(ctx context.Context, jobID int64) ([]string, error) {
	return s.models(ctx, jobID, `AND status IN ('pending', 'running')`)
}

// Models lists, in name order, the models the job's requests ask for.
func (s *Store) Models(ctx context.Context, jobID int64) ([]string, error) {
	return s.models(ctx, jobID, "")
}

func (s *Store) models(ctx context.Context, jobID int64, cond string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT model FROM requests
		WHERE job_id = ? `+cond+` ORDER BY model`, jobID)
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	defer rows.Close()
	var models []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, fmt.Errorf("models: %w", err)
		}
		models = append(models, m)
	}
	return models, rows.Err()
}
