package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

// jobColumns are the columns scanJob reads, in its order.
const jobColumns = `id, name, source, fingerprint, default_model, state, created_at, total,
	settings, last_end, last_end_at, last_end_message, lock_token, lock_pid, lock_host, lock_heartbeat`

// Job returns the job of that name, or jobs.ErrNotFound.
func (s *Store) Job(ctx context.Context, name string) (jobs.Job, error) {
	job, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return job, fmt.Errorf("job %q: %w", name, jobs.ErrNotFound)
	} else if err != nil {
		return job, fmt.Errorf("job %q: %w", name, err)
	}
	return job, nil
}

// Jobs lists every job with its counts per status, oldest first.
func (s *Store) Jobs(ctx context.Context) ([]jobs.JobSummary, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobs.JobSummary, error) {
		job, err := scanJob(row)
		return jobs.JobSummary{Job: job}, err
	})
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	for i := range list {
		if list[i].Counts, err = counts(ctx, s.pool, list[i].ID); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// counts reads the job's requests per status; every status is in the map,
// 0 when the job has none of it.
func counts(ctx context.Context, q querier, jobID int64) (map[jobs.Status]int, error) {
	rows, err := q.Query(ctx, `SELECT status, count(*) FROM requests WHERE job_id = $1 GROUP BY status`, jobID)
	if err != nil {
		return nil, fmt.Errorf("count requests: %w", err)
	}
	defer rows.Close()
	out := make(map[jobs.Status]int, len(jobs.Statuses))
	for _, st := range jobs.Statuses {
		out[st] = 0
	}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count requests: %w", err)
		}
		out[jobs.Status(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count requests: %w", err)
	}
	return out, nil
}

// scanJob reads a row of jobColumns.
func scanJob(row scanner) (jobs.Job, error) {
	var j jobs.Job
	var state, settings, end string
	var created, endAt int64
	var token, host *string
	var pid, beat *int64
	err := row.Scan(&j.ID, &j.Name, &j.Source, &j.Fingerprint, &j.DefaultModel, &state, &created, &j.Total,
		&settings, &end, &endAt, &j.LastEndMessage, &token, &pid, &host, &beat)
	if err != nil {
		return j, err
	}
	j.State = jobs.JobState(state)
	j.CreatedAt = fromMillis(created)
	j.LastEnd, j.LastEndAt = jobs.RunEnd(end), fromMillis(endAt)
	j.Lock = jobs.LockOwner{Token: deref(token), PID: int(deref(pid)), Host: deref(host)}
	j.LockHeartbeat = fromMillis(deref(beat))
	if err := json.Unmarshal([]byte(settings), &j.Settings); err != nil {
		return j, fmt.Errorf("job %q: settings: %w", j.Name, err)
	}
	return j, nil
}

// deref is *p, or the zero value for a NULL (nil) column.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Retry puts the failed requests of an active job back to pending, with
// fresh attempt counts (their attempt history stays). Lines kept invalid
// at import (ClassInvalidInput) stay failed: no attempt can make them valid.
func (s *Store) Retry(ctx context.Context, jobID int64) (int, error) {
	return s.inActiveJob(ctx, "retry", jobID, func(tx pgx.Tx) (int64, error) {
		tag, err := tx.Exec(ctx, `UPDATE requests SET status = 'pending', attempts = 0, not_before = 0
			WHERE job_id = $1 AND status = 'failed' AND error_class IS DISTINCT FROM $2`, jobID, string(jobs.ClassInvalidInput))
		return tag.RowsAffected(), err
	})
}

// Cancel marks the job cancelled and its pending requests cancelled, and
// its running ones that no live run holds: the orphans of dead runs. A
// live run finishes what it holds and then stops claiming (its heartbeat
// says the job is cancelled). Requests in an open provider batch stay
// running: the batch's answers may still be recorded, and collecting it
// puts the rest back for CancelLeftovers.
func (s *Store) Cancel(ctx context.Context, jobID int64) (int, error) {
	return s.inActiveJob(ctx, "cancel", jobID, func(tx pgx.Tx) (int64, error) {
		if _, err := tx.Exec(ctx, `UPDATE jobs SET state = 'cancelled' WHERE id = $1`, jobID); err != nil {
			return 0, err
		}
		tag, err := tx.Exec(ctx, `UPDATE requests SET status = 'cancelled', lease_owner = NULL, lease_until = NULL
			WHERE job_id = $1 AND (status = 'pending' OR (status = 'running' AND NOT `+heldLive+` AND NOT `+inOpenBatch+`))`,
			jobID)
		return tag.RowsAffected(), err
	})
}

// inActiveJob runs update in a transaction after checking, with the job's
// row locked, that the job is active, and returns the rows it changed. It
// returns jobs.ErrNotFound for a missing job and jobs.ErrCancelled for a
// cancelled one, as they are (the command line says them); any other
// error is wrapped with what.
func (s *Store) inActiveJob(ctx context.Context, what string, jobID int64, update func(pgx.Tx) (int64, error)) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback(ctx)
	var state string
	err = tx.QueryRow(ctx, `SELECT state FROM jobs WHERE id = $1 FOR UPDATE`, jobID).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, jobs.ErrNotFound
	} else if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if jobs.JobState(state) != jobs.JobActive {
		return 0, jobs.ErrCancelled
	}
	n, err := update(tx)
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return int(n), nil
}

// SaveSettings replaces the job's stored settings.
func (s *Store) SaveSettings(ctx context.Context, jobID int64, set jobs.Settings) error {
	b, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE jobs SET settings = $1 WHERE id = $2`, string(b), jobID); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	return nil
}

// EndRun stores why the job's run ended, with its message.
func (s *Store) EndRun(ctx context.Context, jobID int64, end jobs.RunEnd, message string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE jobs SET last_end = $1, last_end_at = $2, last_end_message = $3 WHERE id = $4`,
		string(end), millis(at), message, jobID)
	if err != nil {
		return fmt.Errorf("end run: %w", err)
	}
	return nil
}
