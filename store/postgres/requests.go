package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// claimQuery moves up to $3 due pending requests of the active job $1 to
// running and returns them, leased to the run $4 until its lease period
// $5 from now (no lease when $4 is NULL: no run of this store locked the
// job). A run whose row of job_runners is no longer live claims nothing:
// it was given up, and its heartbeat will tell it to stop. The requests
// are picked as SQLite picks them (longest due first: never-tried ones,
// not before 0, in id order, then those put back, by their not-before
// time) along the claim index. FOR UPDATE SKIP LOCKED lets claims of
// several runners go side by side: each passes over the rows another
// claim has locked and has not yet committed, instead of waiting for it
// and then finding them running.
const claimQuery = `UPDATE requests SET status = 'running', lease_owner = $4,
		lease_until = CASE WHEN $4::text IS NULL THEN NULL ELSE llmbatch_now_ms() + $5 END
	WHERE id IN (SELECT id FROM requests
		WHERE job_id = $1 AND status = 'pending' AND not_before <= $2
		AND EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND state = 'active')
		AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM job_runners r
			WHERE r.job_id = $1 AND r.token = $4 AND ` + runnerLive + `))
		ORDER BY not_before, id LIMIT $3 FOR UPDATE SKIP LOCKED)
	RETURNING id, line, custom_id, endpoint, model, body, metadata, attempts, not_before`

// maxClaim bounds the memory a claim reserves ahead: a claim of "all"
// (math.MaxInt) must not ask for that much capacity.
const maxClaim = 1024

// Claim atomically moves up to n due pending requests of an active job to
// running, leased to the run that locked the job through this store, and
// returns them in id (input) order.
func (s *Store) Claim(ctx context.Context, jobID int64, n int, now time.Time) ([]jobs.Request, error) {
	if n <= 0 {
		return nil, nil
	}
	run, _ := s.leases.of(jobID)
	rows, err := s.pool.Query(ctx, claimQuery, jobID, millis(now), n, s.leases.tokenOf(jobID), run.period.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	defer rows.Close()
	out := make([]jobs.Request, 0, min(n, maxClaim))
	for rows.Next() {
		r := jobs.Request{JobID: jobID, Status: jobs.StatusRunning}
		var endpoint string
		var notBefore int64
		if err := rows.Scan(&r.ID, &r.Line, &r.CustomID, &endpoint, &r.Model, &r.Body, (*[]byte)(&r.Metadata),
			&r.Attempts, &notBefore); err != nil {
			return nil, fmt.Errorf("claim requests: %w", err)
		}
		r.Endpoint = jobs.Endpoint(endpoint)
		r.NotBefore = fromMillis(notBefore)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	// RETURNING promises no order.
	slices.SortFunc(out, func(a, b jobs.Request) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Waiting returns how many requests of an active job are pending or
// leased to a run, and the earliest not-before time among the pending
// ones (zero when none is pending). A run finds nothing to claim while
// other runs hold what is left; it waits for them rather than ending, so
// that what they hold comes back to it should they die (its heartbeat
// puts their expired leases back to pending).
func (s *Store) Waiting(ctx context.Context, jobID int64) (int, time.Time, error) {
	var n int
	var next *int64
	err := s.pool.QueryRow(ctx, `SELECT count(*), min(not_before) FILTER (WHERE status = 'pending') FROM requests
		WHERE job_id = $1 AND (status = 'pending' OR (status = 'running' AND lease_owner IS NOT NULL))
		AND (SELECT state FROM jobs WHERE id = $1) = 'active'`,
		jobID).Scan(&n, &next)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count pending requests: %w", err)
	}
	return n, fromMillis(deref(next)), nil
}

// Recover puts back to pending, without using an attempt, the running
// requests that dead runs left: those leased by no run, or whose lease
// expired, or whose run has no live row. What live runs hold stays theirs,
// and requests in an open provider batch are the batch's. Rows a Record
// holds locked are passed over (SKIP LOCKED): that Record decides them.
func (s *Store) Recover(ctx context.Context, jobID int64) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE requests SET status = 'pending', lease_owner = NULL, lease_until = NULL
		WHERE id IN (SELECT id FROM requests WHERE job_id = $1 AND status = 'running'
			AND NOT `+heldLive+` AND NOT `+inOpenBatch+` FOR UPDATE SKIP LOCKED)`, jobID)
	if err != nil {
		return 0, fmt.Errorf("recover orphaned requests: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ClearWaits makes every pending request of the job due now: the waits of
// a backoff earned against an endpoint the job no longer uses.
func (s *Store) ClearWaits(ctx context.Context, jobID int64) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE requests SET not_before = 0
		WHERE job_id = $1 AND status = 'pending' AND not_before > 0`, jobID)
	if err != nil {
		return 0, fmt.Errorf("clear waits: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// CancelLeftovers cancels what a cancelled job still has pending, and
// what it has running that no live run holds: what runs put back after
// the cancel (a retry, a request claimed and never sent), and what dead
// runs left. What a live run holds is left to it: its outcome is recorded,
// and what that puts back is cancelled by the CancelLeftovers after its
// run. It does nothing to an active job, nor to the requests of an open
// provider batch, which the batch's collection puts back to pending first.
func (s *Store) CancelLeftovers(ctx context.Context, jobID int64) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE requests SET status = 'cancelled', lease_owner = NULL, lease_until = NULL
		WHERE job_id = $1 AND (status = 'pending' OR (status = 'running' AND NOT `+heldLive+` AND NOT `+inOpenBatch+`))
		AND (SELECT state FROM jobs WHERE id = $1) = 'cancelled'`, jobID)
	if err != nil {
		return 0, fmt.Errorf("cancel leftovers: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
