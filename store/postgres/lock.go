package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

// Lock takes the job's lock for owner. A holder whose heartbeat is older
// than staleAfter, or that dead says is gone, is taken over. Each take is
// one conditional UPDATE, so that of two runs taking a lock at once only
// one succeeds.
func (s *Store) Lock(ctx context.Context, jobID int64, owner jobs.LockOwner, staleAfter time.Duration, dead func(jobs.LockOwner) bool) error {
	now := s.Now()
	ok, err := s.setLock(ctx, jobID, owner, now, `lock_token IS NULL OR lock_token = $6 OR lock_heartbeat < $7`,
		owner.Token, millis(now.Add(-staleAfter)))
	if err != nil || ok {
		return err
	}
	holder, beat, err := s.lockHolder(ctx, jobID)
	if err != nil {
		return err
	}
	if dead != nil && dead(holder) {
		if ok, err := s.setLock(ctx, jobID, owner, now, `lock_token = $6`, holder.Token); err != nil || ok {
			return err
		}
	}
	return &jobs.LockedError{Holder: holder, Heartbeat: beat}
}

// setLock gives owner the lock if cond (whose arguments are $6 on) holds,
// and reports whether it did.
func (s *Store) setLock(ctx context.Context, jobID int64, owner jobs.LockOwner, now time.Time, cond string, args ...any) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE jobs SET lock_token = $1, lock_pid = $2, lock_host = $3, lock_heartbeat = $4
		WHERE id = $5 AND (`+cond+`)`, append([]any{owner.Token, owner.PID, owner.Host, millis(now), jobID}, args...)...)
	if err != nil {
		return false, fmt.Errorf("lock job: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *Store) lockHolder(ctx context.Context, jobID int64) (jobs.LockOwner, time.Time, error) {
	var token, host *string
	var pid, beat *int64
	err := s.pool.QueryRow(ctx, `SELECT lock_token, lock_pid, lock_host, lock_heartbeat FROM jobs WHERE id = $1`, jobID).
		Scan(&token, &pid, &host, &beat)
	if errors.Is(err, pgx.ErrNoRows) {
		return jobs.LockOwner{}, time.Time{}, jobs.ErrNotFound
	} else if err != nil {
		return jobs.LockOwner{}, time.Time{}, fmt.Errorf("read job lock: %w", err)
	}
	return jobs.LockOwner{Token: deref(token), PID: int(deref(pid)), Host: deref(host)}, fromMillis(deref(beat)), nil
}

// Heartbeat renews owner's lock, or returns jobs.ErrLockLost if another run
// has taken it; it returns jobs.ErrCancelled, with the lock renewed, once
// the job has been cancelled, so that the run stops claiming.
func (s *Store) Heartbeat(ctx context.Context, jobID int64, owner jobs.LockOwner) error {
	var state string
	err := s.pool.QueryRow(ctx, `UPDATE jobs SET lock_heartbeat = $1 WHERE id = $2 AND lock_token = $3
		RETURNING state`, millis(s.Now()), jobID, owner.Token).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return jobs.ErrLockLost
	} else if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if jobs.JobState(state) == jobs.JobCancelled {
		return jobs.ErrCancelled
	}
	return nil
}

// Unlock releases owner's lock if owner still holds it.
func (s *Store) Unlock(ctx context.Context, jobID int64, owner jobs.LockOwner) error {
	_, err := s.pool.Exec(ctx, `UPDATE jobs SET lock_token = NULL, lock_pid = NULL, lock_host = NULL,
		lock_heartbeat = NULL WHERE id = $1 AND lock_token = $2`, jobID, owner.Token)
	if err != nil {
		return fmt.Errorf("unlock job: %w", err)
	}
	return nil
}
