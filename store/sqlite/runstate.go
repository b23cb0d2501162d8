package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/llmbatch/llmbatch/jobs"
)

var _ jobs.RunStateStore = (*Store)(nil)

// SaveRunState replaces the job's run state. A run calls it about once a
// second, never per request, so that it costs the writer nothing to speak
// of.
func (s *Store) SaveRunState(ctx context.Context, jobID int64, st jobs.RunState) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO run_state (job_id, concurrency, max_concurrency, in_flight,
		rpm, tpm, adaptive_rpm, paused_until, pause_reason, paused_since, next_probe, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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

// RunState returns the job's last saved run state, or jobs.ErrNotFound. It
// reads through the reader pool, so status never waits for a run.
func (s *Store) RunState(ctx context.Context, jobID int64) (jobs.RunState, error) {
	var st jobs.RunState
	var paused, since, probe, updated int64
	err := s.r.QueryRowContext(ctx, `SELECT concurrency, max_concurrency, in_flight, rpm, tpm, adaptive_rpm,
		paused_until, pause_reason, paused_since, next_probe, updated_at FROM run_state WHERE job_id = ?`, jobID).
		Scan(&st.Concurrency, &st.MaxConcurrency, &st.InFlight, &st.RPM, &st.TPM, &st.AdaptiveRPM, &paused,
			&st.Outage, &since, &probe, &updated)
	if errors.Is(err, sql.ErrNoRows) {
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
	if _, err := s.w.ExecContext(ctx, `DELETE FROM run_state WHERE job_id = ?`, jobID); err != nil {
		return fmt.Errorf("clear run state: %w", err)
	}
	return nil
}
