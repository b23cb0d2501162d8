package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// Lock takes the job's lock for owner. A holder whose heartbeat is older
// than staleAfter, or that dead says is gone, is taken over.
func (s *Store) Lock(ctx context.Context, jobID int64, owner jobs.LockOwner, staleAfter time.Duration, dead func(jobs.LockOwner) bool) error {
	now := s.Now()
	ok, err := s.setLock(ctx, jobID, owner, now, `lock_token IS NULL OR lock_token = ? OR lock_heartbeat < ?`,
		owner.Token, millis(now.Add(-staleAfter)))
	if err != nil || ok {
		return err
	}
	holder, beat, err := s.lockHolder(ctx, jobID)
	if err != nil {
		return err
	}
	if dead != nil && dead(holder) {
		if ok, err := s.setLock(ctx, jobID, owner, now, `lock_token = ?`, holder.Token); err != nil || ok {
			return err
		}
	}
	return &jobs.LockedError{Holder: holder, Heartbeat: beat}
}

func (s *Store) setLock(ctx context.Context, jobID int64, owner jobs.LockOwner, now time.Time, cond string, args ...any) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE jobs SET lock_token = ?, lock_pid = ?, lock_host = ?, lock_heartbeat = ?
		WHERE id = ? AND (`+cond+`)`, append([]any{owner.Token, owner.PID, owner.Host, millis(now), jobID}, args...)...)
	if err != nil {
		return false, fmt.Errorf("lock job: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *Store) lockHolder(ctx context.Context, jobID int64) (jobs.LockOwner, time.Time, error) {
	var token, host sql.NullString
	var pid, beat sql.NullInt64
	err := s.w.QueryRowContext(ctx, `SELECT lock_token, lock_pid, lock_host, lock_heartbeat FROM jobs WHERE id = ?`, jobID).
		Scan(&token, &pid, &host, &beat)
	if errors.Is(err, sql.ErrNoRows) {
		return jobs.LockOwner{}, time.Time{}, jobs.ErrNotFound
	} else if err != nil {
		return jobs.LockOwner{}, time.Time{}, fmt.Errorf("read job lock: %w", err)
	}
	return jobs.LockOwner{Token: token.String, PID: int(pid.Int64), Host: host.String}, fromMillis(beat.Int64), nil
}

// Heartbeat renews owner's lock, or returns jobs.ErrLockLost if another run
// has taken it; it returns jobs.ErrCancelled, with the lock renewed, once
// the job has been cancelled, so that the run stops claiming.
func (s *Store) Heartbeat(ctx context.Context, jobID int64, owner jobs.LockOwner) error {
	res, err := s.w.ExecContext(ctx, `UPDATE jobs SET lock_heartbeat = ? WHERE id = ? AND lock_token = ?`,
		millis(s.Now()), jobID, owner.Token)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	} else if n == 0 {
		return jobs.ErrLockLost
	}
	var state string
	if err := s.w.QueryRowContext(ctx, `SELECT state FROM jobs WHERE id = ?`, jobID).Scan(&state); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if jobs.JobState(state) == jobs.JobCancelled {
		return jobs.ErrCancelled
	}
	return nil
}

// Unlock releases owner's lock if owner still holds it.
func (s *Store) Unlock(ctx context.Context, jobID int64, owner jobs.LockOwner) error {
	_, err := s.w.ExecContext(ctx, `UPDATE jobs SET lock_token = NULL, lock_pid = NULL, lock_host = NULL,
		lock_heartbeat = NULL WHERE id = ? AND lock_token = ?`, jobID, owner.Token)
	if err != nil {
		return fmt.Errorf("unlock job: %w", err)
	}
	return nil
}
