package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

var _ jobs.RunStateStore = (*Store)(nil)

// SaveRunState replaces the job's run state. A run calls it about once a
// second, never per request.
func (s *Store) SaveRunState(ctx context.Context, jobID int64, st jobs.RunState) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO run_state (job_id, concurrency, max_concurrency, in_flight,
		rpm, tpm, adaptive_rpm, paused_until, pause_reason, paused_since, next_probe, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (job_id) DO UPDATE SET concurrency = excluded.concurrency,
		max_concurrency = excluded.max_concurrency, in_flight = excluded.in_flight, rpm = excluded.rpm,
		tpm = excluded.tpm, adaptive_rpm = excluded.adaptive_rpm, paused_until = excluded.paused_until,
		pause_reason = excluded.pause_reason, paused_since = excluded.paused_since,
		next_probe = excluded.next_probe, updated_at = excluded.updated_at`,
		jobID, st.Concurrency, st.MaxConcurrency, st.InFlight, st.RPM, st.TPM, st.AdaptiveRPM,
		millis(st.PausedUntil), st.Outage, millis(st.OutageSince), millis(st.NextProbe), millis(st.UpdatedAt))
	if err != nil {
		return fmt.Errorf("save run state: %w", err)
	}
	return nil
}

// RunState returns the job's last saved run state, or jobs.ErrNotFound.
func (s *Store) RunState(ctx context.Context, jobID int64) (jobs.RunState, error) {
	var st jobs.RunState
	var paused, since, probe, updated int64
	err := s.pool.QueryRow(ctx, `SELECT concurrency, max_concurrency, in_flight, rpm, tpm, adaptive_rpm,
		paused_until, pause_reason, paused_since, next_probe, updated_at FROM run_state WHERE job_id = $1`, jobID).
		Scan(&st.Concurrency, &st.MaxConcurrency, &st.InFlight, &st.RPM, &st.TPM, &st.AdaptiveRPM, &paused,
			&st.Outage, &since, &probe, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, jobs.ErrNotFound
	} else if err != nil {
		return st, fmt.Errorf("read run state: %w", err)
	}
	st.PausedUntil, st.UpdatedAt = fromMillis(paused), fromMillis(updated)
	st.OutageSince, st.NextProbe = fromMillis(since), fromMillis(probe)
	return st, nil
}

// ClearRunState forgets the job's run state.
func (s *Store) ClearRunState(ctx context.Context, jobID int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM run_state WHERE job_id = $1`, jobID); err != nil {
		return fmt.Errorf("clear run state: %w", err)
	}
	return nil
}
