package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// Claim atomically moves up to n due pending requests of an active job to
// running and returns them in id (input) order.
//
// The claim is committed without an fsync (synchronous=NORMAL for this one
// transaction): a claim lost to a power cut leaves its requests pending,
// which is where Recover would put them anyway, and the fsync of the next
// Record makes it durable with everything written before it. Outcomes
// (results, failures, attempts) are still committed with synchronous=FULL.
func (s *Store) Claim(ctx context.Context, jobID int64, n int, now time.Time) ([]jobs.Request, error) {
	if n <= 0 { // LIMIT -1 would mean no limit at all
		return nil, nil
	}
	var out []jobs.Request
	err := s.withoutSync(ctx, func(conn *sql.Conn) error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if out, err = claimTx(ctx, tx, jobID, n, now); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	return out, nil
}

// claimTx selects the due requests and marks them running by their ids,
// up to 64 in a statement: the single UPDATE … WHERE id IN (SELECT …)
// RETURNING statement builds four temporary tables per call, which costs
// more than the updates.
func claimTx(ctx context.Context, tx *sql.Tx, jobID int64, n int, now time.Time) ([]jobs.Request, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, line, custom_id, endpoint, model, body, metadata, attempts, not_before
		FROM requests WHERE job_id = ? AND status = 'pending' AND not_before <= ?
		AND EXISTS (SELECT 1 FROM jobs WHERE id = ? AND state = 'active')
		ORDER BY not_before, id LIMIT ?`, jobID, millis(now), jobID, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	// n bounds the rows, not the memory: a claim of "all" (math.MaxInt)
	// must not ask for that much capacity.
	out := make([]jobs.Request, 0, min(n, maxRowsPerInsert))
	for rows.Next() {
		r := jobs.Request{JobID: jobID, Status: jobs.StatusRunning}
		var endpoint string
		var notBefore int64
		if err := rows.Scan(&r.ID, &r.Line, &r.CustomID, &endpoint, &r.Model, &r.Body, (*[]byte)(&r.Metadata),
			&r.Attempts, &notBefore); err != nil {
			return nil, err
		}
		r.Endpoint = jobs.Endpoint(endpoint)
		r.NotBefore = fromMillis(notBefore)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if err := execRows(ctx, tx, markRunning, len(out), func(args []any, i int) []any {
		return append(args, out[i].ID)
	}); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// withoutSync runs fn on the writer connection with synchronous=NORMAL,
// and restores synchronous=FULL after it. A connection that cannot be
// restored is discarded, so that no later transaction commits without an
// fsync by mistake.
func (s *Store) withoutSync(ctx context.Context, fn func(*sql.Conn) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return err
	}
	ferr := fn(conn)
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = FULL`); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return errors.Join(ferr, err)
	}
	return ferr
}

// Waiting returns how many requests of an active job are pending and the
// earliest not-before time among them.
func (s *Store) Waiting(ctx context.Context, jobID int64) (int, time.Time, error) {
	var n int
	var next sql.NullInt64
	err := s.w.QueryRowContext(ctx, `SELECT count(*), min(not_before) FROM requests
		WHERE job_id = ? AND status = 'pending' AND (SELECT state FROM jobs WHERE id = ?) = 'active'`,
		jobID, jobID).Scan(&n, &next)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count pending requests: %w", err)
	}
	return n, fromMillis(next.Int64), nil
}

// Recover puts running requests, which only a dead run can have left while
// the caller holds the lock, back to pending without using an attempt.
// Requests in an open provider batch are the batch's, not orphans.
func (s *Store) Recover(ctx context.Context, jobID int64) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE requests SET status = 'pending' WHERE job_id = ? AND status = 'running'
		AND NOT `+inOpenBatch, jobID)
	if err != nil {
		return 0, fmt.Errorf("recover orphaned requests: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ClearWaits makes every pending request of the job due now: the waits of
// a backoff earned against an endpoint the job no longer uses.
func (s *Store) ClearWaits(ctx context.Context, jobID int64) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE requests SET not_before = 0
		WHERE job_id = ? AND status = 'pending' AND not_before > 0`, jobID)
	if err != nil {
		return 0, fmt.Errorf("clear waits: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// CancelLeftovers cancels what a cancelled job still has pending or
// running: what a live run put back after the cancel (a retry, a request
// claimed and never sent) once that run has ended. It does nothing to an
// active job, nor to the requests of an open provider batch, which the
// batch's collection puts back to pending first.
func (s *Store) CancelLeftovers(ctx context.Context, jobID int64) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE requests SET status = 'cancelled'
		WHERE job_id = ? AND (status = 'pending' OR (status = 'running' AND NOT `+inOpenBatch+`))
		AND (SELECT state FROM jobs WHERE id = ?) = 'cancelled'`, jobID, jobID)
	if err != nil {
		return 0, fmt.Errorf("cancel leftovers: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
