package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

// Summary is a job's counts and usage as they stood at one moment, read
// in two steps so that a run need not wait for the slow one: BeginSummary
// fixes the moment and reads the cheap figures; Finish adds the usage per
// model, a pass over every result, while the run already works. The moment
// is a REPEATABLE READ, read-only transaction: its snapshot, taken by the
// first query, sees what was committed before it and nothing after, on
// this host or any other, which is what a run's progress needs of the
// figures it adds its own outcomes to.
type Summary struct {
	s     *Store
	tx    pgx.Tx
	jobID int64
	stats jobs.Stats
}

// BeginSummary reads the job and its counts by status, with how many were
// answered from the cache and how many are running in open provider
// batches, in a new snapshot that Finish or Close ends. It returns
// jobs.ErrNotFound when there is no job with that id.
func (s *Store) BeginSummary(ctx context.Context, jobID int64) (jobs.Summary, error) {
	return s.beginSummary(ctx, jobID)
}

func (s *Store) beginSummary(ctx context.Context, jobID int64) (*Summary, error) {
	tx, err := s.pool.BeginTx(ctx, snapshot)
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	sum := &Summary{s: s, tx: tx, jobID: jobID}
	if err := sum.readCounts(ctx); err != nil {
		sum.Close()
		return nil, err
	}
	return sum, nil
}

// snapshot is the transaction every multi-query read runs in, so that all
// its figures come from one moment even while runners commit.
var snapshot = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// readCounts reads the job, its counts, its cached results and its
// requests in open batches.
func (sum *Summary) readCounts(ctx context.Context) error {
	var err error
	row := sum.tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, sum.jobID)
	if sum.stats.Job, err = scanJob(row); errors.Is(err, pgx.ErrNoRows) {
		return jobs.ErrNotFound
	} else if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if sum.stats.Counts, err = counts(ctx, sum.tx, sum.jobID); err != nil {
		return err
	}
	if sum.stats.Cached, err = cachedCount(ctx, sum.tx, sum.jobID); err != nil {
		return err
	}
	sum.stats.InBatches, err = inBatches(ctx, sum.tx, sum.jobID)
	return err
}

// inBatches counts the job's running requests that are in its open
// provider batches: from the batches, through requests_provider_batch.
func inBatches(ctx context.Context, q querier, jobID int64) (int, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM provider_batches b
		JOIN requests q ON q.provider_batch = b.id AND q.status = 'running'
		WHERE b.job_id = $1 AND b.state <> 'collected'`, jobID).Scan(&n); err != nil {
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
	models, err := modelUsage(ctx, sum.tx, sum.jobID)
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
	if err := sum.tx.QueryRow(ctx, `SELECT count(*) FROM attempts WHERE job_id = $1`, sum.jobID).Scan(&sum.stats.Attempts); err != nil {
		return fmt.Errorf("summary: attempts: %w", err)
	}
	return nil
}

// Close ends the summary's transaction; safe after Finish. It rolls back
// without the caller's context: a read-only transaction has nothing to
// undo, and a cancelled context must not keep its connection from the
// pool.
func (sum *Summary) Close() { _ = sum.tx.Rollback(context.Background()) }
