package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

const jobColumns = `id, name, source, fingerprint, default_model, state, created_at, total,
	settings, last_end, last_end_at, last_end_message, lock_token, lock_pid, lock_host, lock_heartbeat`

// Import creates the job and stores every request src yields in one
// transaction: either the whole file is stored, or nothing is.
func (s *Store) Import(ctx context.Context, job jobs.Job, src jobs.RequestSource) (jobs.Job, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return job, fmt.Errorf("import: %w", err)
	}
	defer tx.Rollback()
	job.State = jobs.JobActive
	job.CreatedAt = s.Now()
	settings, err := json.Marshal(job.Settings)
	if err != nil {
		return job, fmt.Errorf("import: settings: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO jobs (name, source, fingerprint, default_model, state, created_at, settings)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, job.Name, job.Source, job.Fingerprint, job.DefaultModel, job.State,
		millis(job.CreatedAt), string(settings))
	if isUniqueViolation(err) {
		return job, fmt.Errorf("import job %q: %w", job.Name, jobs.ErrJobChanged)
	} else if err != nil {
		return job, fmt.Errorf("import: %w", err)
	}
	if job.ID, err = res.LastInsertId(); err != nil {
		return job, fmt.Errorf("import: %w", err)
	}
	if job.Total, err = importRequests(ctx, tx, job, src, s.DeferIndexesAfter); err != nil {
		return job, err
	}
	if f, ok := src.(jobs.Fingerprinter); ok {
		job.Fingerprint = f.Fingerprint()
	}
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET total = ?, fingerprint = ? WHERE id = ?`,
		job.Total, job.Fingerprint, job.ID); err != nil {
		return job, fmt.Errorf("import: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return job, fmt.Errorf("import: commit: %w", err)
	}
	return job, nil
}

// Job returns the job of that name, or jobs.ErrNotFound.
func (s *Store) Job(ctx context.Context, name string) (jobs.Job, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE name = ?`, name)
	job, err := scanJob(row)
	if errors.Is(err, sql.ErrNoRows) {
		return job, fmt.Errorf("job %q: %w", name, jobs.ErrNotFound)
	}
	return job, err
}

// Jobs lists every job with its counts per status, oldest first.
func (s *Store) Jobs(ctx context.Context) ([]jobs.JobSummary, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var list []jobs.JobSummary
	for rows.Next() {
		job, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, jobs.JobSummary{Job: job})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].Counts, err = s.counts(ctx, s.r, list[i].ID); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func (s *Store) counts(ctx context.Context, q querier, jobID int64) (map[jobs.Status]int, error) {
	rows, err := q.QueryContext(ctx, `SELECT status, count(*) FROM requests WHERE job_id = ? GROUP BY status`, jobID)
	if err != nil {
		return nil, fmt.Errorf("count requests: %w", err)
	}
	defer rows.Close()
	counts := make(map[jobs.Status]int, len(jobs.Statuses))
	for _, st := range jobs.Statuses {
		counts[st] = 0
	}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		counts[jobs.Status(st)] = n
	}
	return counts, rows.Err()
}

// Retry puts the failed requests of an active job back to pending, with
// fresh attempt counts (their attempt history stays). Lines kept invalid
// at import (ClassInvalidInput) stay failed: no attempt can make them valid.
func (s *Store) Retry(ctx context.Context, jobID int64) (int, error) {
	return s.inActiveJob(ctx, jobID, func(tx *sql.Tx) (sql.Result, error) {
		return tx.ExecContext(ctx, `UPDATE requests SET status = 'pending', attempts = 0, not_before = 0
			WHERE job_id = ? AND status = 'failed' AND error_class IS NOT ?`, jobID, jobs.ClassInvalidInput)
	})
}

// Cancel marks the job cancelled and its pending requests cancelled. When no
// run holds the job, the orphans of a dead run are cancelled too; a live
// run finishes what it has in flight and then stops claiming. Requests in
// an open provider batch stay running: the batch's answers may still be
// recorded, and collecting it puts the rest back for CancelLeftovers.
func (s *Store) Cancel(ctx context.Context, jobID int64) (int, error) {
	return s.inActiveJob(ctx, jobID, func(tx *sql.Tx) (sql.Result, error) {
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'cancelled' WHERE id = ?`, jobID); err != nil {
			return nil, err
		}
		return tx.ExecContext(ctx, `UPDATE requests SET status = 'cancelled'
			WHERE job_id = ? AND (status = 'pending'
				OR (status = 'running' AND (SELECT lock_token IS NULL FROM jobs WHERE id = ?)
					AND NOT `+inOpenBatch+`))`, jobID, jobID)
	})
}

// inActiveJob runs update in a transaction after checking that the job is
// active, and returns the rows it changed.
func (s *Store) inActiveJob(ctx context.Context, jobID int64, update func(*sql.Tx) (sql.Result, error)) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var state string
	if err := tx.QueryRowContext(ctx, `SELECT state FROM jobs WHERE id = ?`, jobID).Scan(&state); errors.Is(err, sql.ErrNoRows) {
		return 0, jobs.ErrNotFound
	} else if err != nil {
		return 0, err
	}
	if jobs.JobState(state) != jobs.JobActive {
		return 0, jobs.ErrCancelled
	}
	res, err := update(tx)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	return int(n), tx.Commit()
}

type scanner interface{ Scan(dest ...any) error }

func scanJob(row scanner) (jobs.Job, error) {
	var j jobs.Job
	var state, settings, end string
	var created, endAt int64
	var token, host sql.NullString
	var pid, beat sql.NullInt64
	err := row.Scan(&j.ID, &j.Name, &j.Source, &j.Fingerprint, &j.DefaultModel, &state, &created, &j.Total,
		&settings, &end, &endAt, &j.LastEndMessage, &token, &pid, &host, &beat)
	if err != nil {
		return j, err
	}
	j.State = jobs.JobState(state)
	j.CreatedAt = fromMillis(created)
	j.LastEnd, j.LastEndAt = jobs.RunEnd(end), fromMillis(endAt)
	j.Lock = jobs.LockOwner{Token: token.String, PID: int(pid.Int64), Host: host.String}
	j.LockHeartbeat = fromMillis(beat.Int64)
	if err := json.Unmarshal([]byte(settings), &j.Settings); err != nil {
		return j, fmt.Errorf("job %q: settings: %w", j.Name, err)
	}
	return j, nil
}

// SaveSettings replaces the job's stored settings.
func (s *Store) SaveSettings(ctx context.Context, jobID int64, set jobs.Settings) error {
	b, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE jobs SET settings = ? WHERE id = ?`, string(b), jobID); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	return nil
}

// EndRun stores why the job's run ended, with its message.
func (s *Store) EndRun(ctx context.Context, jobID int64, end jobs.RunEnd, message string, at time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE jobs SET last_end = ?, last_end_at = ?, last_end_message = ? WHERE id = ?`,
		string(end), millis(at), message, jobID)
	if err != nil {
		return fmt.Errorf("end run: %w", err)
	}
	return nil
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}
