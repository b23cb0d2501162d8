package postgres

// Many runners, one job (jobs.Runners): Lock admits every run and gives it
// a row of job_runners; Claim leases what it takes to the run, Heartbeat
// renews the row and the leases and puts back what runs that are gone
// leased, Record applies only under the lease, Unlock removes the row.
// Every time here is the database's (llmbatch_now_ms), so that hosts whose
// clocks disagree agree on whose lease has expired.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

var _ jobs.Runners = (*Store)(nil)

// leases are the runs this store works jobs for, by job: Lock sets one,
// Unlock removes it. Claim and Record, which name no run, act for it.
type leases struct {
	mu    sync.Mutex
	byJob map[int64]lease
}

// lease is a run's token and its lease period.
type lease struct {
	token  string
	period time.Duration
}

func (l *leases) set(jobID int64, v lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byJob == nil {
		l.byJob = map[int64]lease{}
	}
	l.byJob[jobID] = v
}

func (l *leases) remove(jobID int64, token string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byJob[jobID].token == token {
		delete(l.byJob, jobID)
	}
}

// of is the run that claims and records for the job: ok is false when
// no run of this store locked it (a claim then leases to nobody, and a
// record applies only to what nobody leased).
func (l *leases) of(jobID int64) (lease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.byJob[jobID]
	return v, ok
}

// tokenOf is the job's run token as a query argument: NULL for none.
func (l *leases) tokenOf(jobID int64) *string {
	if v, ok := l.of(jobID); ok {
		return &v.token
	}
	return nil
}

// runnerLive is true of a row of job_runners r whose run is live.
const runnerLive = `r.until_ms >= llmbatch_now_ms()`

// heldLive is true of a running request (of the statement's table
// requests) that a live run holds: its lease is current and its run's row
// is live. Only such a request may still be recorded; any other running
// request outside an open provider batch is an orphan.
const heldLive = `(requests.lease_owner IS NOT NULL AND requests.lease_until >= llmbatch_now_ms()
	AND EXISTS (SELECT 1 FROM job_runners r WHERE r.job_id = requests.job_id
		AND r.token = requests.lease_owner AND ` + runnerLive + `))`

// queueIdleBound queues the statement that ends the transaction's session
// should it sit idle in the transaction for period: a run stopped (SIGSTOP,
// a host asleep, its network cut) between two statements of a
// transaction would otherwise keep the rows it locked for as long as it
// stays stopped, and the heartbeats of the other runs, which pass over
// locked rows, could not give back what it held once its lease expired.
// Its transaction then fails, as anything it would record must. The bound
// is never below minIdleBound, so that a lease shorter than a test's
// leaves time between a transaction's round trips.
func queueIdleBound(b *pgx.Batch, period time.Duration) {
	b.Queue(`SELECT set_config('idle_in_transaction_session_timeout', $1, true)`,
		strconv.FormatInt(max(period, minIdleBound).Milliseconds(), 10)+"ms")
}

// minIdleBound is the least time queueIdleBound lets a transaction idle.
const minIdleBound = time.Second

// givenUp is err, the failure of a write of the run this store works jobID
// for, wrapped with jobs.ErrLockLost when that run was given up meanwhile
// (its transaction may have failed for it, see queueIdleBound).
func (s *Store) givenUp(ctx context.Context, jobID int64, err error) error {
	run, ok := s.leases.of(jobID)
	if !ok {
		return err
	}
	var live bool
	qerr := s.pool.QueryRow(context.WithoutCancel(ctx), `SELECT EXISTS (SELECT 1 FROM job_runners r
		WHERE r.job_id = $1 AND r.token = $2 AND `+runnerLive+`)`, jobID, run.token).Scan(&live)
	if qerr != nil || live {
		return err
	}
	return fmt.Errorf("%w: this run was given up (its lease expired): %w", jobs.ErrLockLost, err)
}

// Lock admits owner to the job beside any other live runs: it never
// returns a *jobs.LockedError. It gives owner a row of job_runners (renewed
// if owner has one), leases what this store claims for the job to owner
// for staleAfter past each heartbeat, and names owner in the job's lock
// columns (the newest run, for readers that know one run). Runs that dead
// says are gone lose their rows first, so that Recover gives their
// requests back at once instead of after their leases.
func (s *Store) Lock(ctx context.Context, jobID int64, owner jobs.LockOwner, staleAfter time.Duration, dead func(jobs.LockOwner) bool) error {
	if staleAfter < time.Millisecond {
		staleAfter = time.Millisecond
	}
	if err := s.dropDead(ctx, jobID, owner, dead); err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("lock job: %w", err)
	}
	defer tx.Rollback(ctx)
	idle := &pgx.Batch{}
	queueIdleBound(idle, staleAfter)
	if err := tx.SendBatch(ctx, idle).Close(); err != nil {
		return fmt.Errorf("lock job: %w", err)
	}
	tag, err := tx.Exec(ctx, `UPDATE jobs SET lock_token = $2, lock_pid = $3, lock_host = $4,
		lock_heartbeat = llmbatch_now_ms() WHERE id = $1`, jobID, owner.Token, owner.PID, owner.Host)
	if err != nil {
		return fmt.Errorf("lock job: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return jobs.ErrNotFound
	}
	if _, err := tx.Exec(ctx, `INSERT INTO job_runners (job_id, token, pid, host, lease_ms, started_at, heartbeat, until_ms)
		VALUES ($1, $2, $3, $4, $5, llmbatch_now_ms(), llmbatch_now_ms(), llmbatch_now_ms() + $5)
		ON CONFLICT (job_id, token) DO UPDATE SET pid = $3, host = $4, lease_ms = $5,
			heartbeat = llmbatch_now_ms(), until_ms = llmbatch_now_ms() + $5`,
		jobID, owner.Token, owner.PID, owner.Host, staleAfter.Milliseconds()); err != nil {
		return fmt.Errorf("lock job: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("lock job: %w", err)
	}
	s.leases.set(jobID, lease{token: owner.Token, period: staleAfter})
	return nil
}

// dropDead removes the rows of the job's other runs that dead says are
// gone (a run on this host whose process has ended).
func (s *Store) dropDead(ctx context.Context, jobID int64, owner jobs.LockOwner, dead func(jobs.LockOwner) bool) error {
	if dead == nil {
		return nil
	}
	rows, err := s.pool.Query(ctx, `SELECT token, pid, host FROM job_runners WHERE job_id = $1 AND token <> $2`,
		jobID, owner.Token)
	if err != nil {
		return fmt.Errorf("lock job: %w", err)
	}
	others, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobs.LockOwner, error) {
		var o jobs.LockOwner
		err := row.Scan(&o.Token, &o.PID, &o.Host)
		return o, err
	})
	if err != nil {
		return fmt.Errorf("lock job: %w", err)
	}
	for _, o := range others {
		if !dead(o) {
			continue
		}
		if _, err := s.pool.Exec(ctx, `DELETE FROM job_runners WHERE job_id = $1 AND token = $2`, jobID, o.Token); err != nil {
			return fmt.Errorf("lock job: %w", err)
		}
	}
	return nil
}

// Heartbeat renews owner's row and extends its leases by its lease
// period, and puts back to pending, without using an attempt, what runs
// that are gone leased: leases that expired, or whose run has no live row.
// It returns jobs.ErrLockLost when owner's own row expired or was removed
// (its leases may have been taken: it must stop), and jobs.ErrCancelled,
// with all of that done, once the job is cancelled.
func (s *Store) Heartbeat(ctx context.Context, jobID int64, owner jobs.LockOwner) error {
	tag, err := s.pool.Exec(ctx, `UPDATE job_runners SET heartbeat = llmbatch_now_ms(),
		until_ms = llmbatch_now_ms() + lease_ms WHERE job_id = $1 AND token = $2 AND until_ms >= llmbatch_now_ms()`,
		jobID, owner.Token)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if tag.RowsAffected() == 0 {
		// Given up: a row left expired goes, so that no one takes it for live.
		_, _ = s.pool.Exec(ctx, `DELETE FROM job_runners WHERE job_id = $1 AND token = $2`, jobID, owner.Token)
		return jobs.ErrLockLost
	}
	state, err := s.beat(ctx, jobID, owner)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if jobs.JobState(state) == jobs.JobCancelled {
		return jobs.ErrCancelled
	}
	return nil
}

// beat does the rest of a heartbeat in one transaction and returns the
// job's state. The job's row comes first: it is the only lock the
// transaction may wait for, taken while it holds nothing else (a cancel
// takes that row before the requests); the requests' rows are taken with
// SKIP LOCKED, passing over those a Record holds, so that a heartbeat
// never waits for a Record and never deadlocks with one.
func (s *Store) beat(ctx context.Context, jobID int64, owner jobs.LockOwner) (string, error) {
	b := &pgx.Batch{}
	if run, ok := s.leases.of(jobID); ok {
		queueIdleBound(b, run.period)
	}
	// The job's lock columns name a live run: this one, unless they name
	// another that is live.
	b.Queue(`UPDATE jobs SET lock_token = $2, lock_pid = $3, lock_host = $4, lock_heartbeat = llmbatch_now_ms()
		WHERE id = $1 AND (lock_token IS NULL OR lock_token = $2 OR NOT EXISTS (SELECT 1 FROM job_runners r
			WHERE r.job_id = $1 AND r.token = jobs.lock_token AND `+runnerLive+`))`,
		jobID, owner.Token, owner.PID, owner.Host)
	b.Queue(`UPDATE requests SET lease_until = llmbatch_now_ms() + r.lease_ms FROM job_runners r
		WHERE r.job_id = $1 AND r.token = $2 AND `+runnerLive+` AND requests.id IN (SELECT id FROM requests
			WHERE job_id = $1 AND status = 'running' AND lease_owner = $2 FOR UPDATE SKIP LOCKED)`, jobID, owner.Token)
	b.Queue(`UPDATE requests SET status = 'pending', lease_owner = NULL, lease_until = NULL
		WHERE id IN (SELECT id FROM requests WHERE job_id = $1 AND status = 'running' AND lease_owner IS NOT NULL
			AND NOT `+heldLive+` AND NOT `+inOpenBatch+` FOR UPDATE SKIP LOCKED)`, jobID)
	b.Queue(`DELETE FROM job_runners r WHERE job_id = $1 AND NOT (`+runnerLive+`)`, jobID)
	b.Queue(`SELECT state FROM jobs WHERE id = $1`, jobID)
	var state string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res := tx.SendBatch(ctx, b)
		defer res.Close()
		for range b.Len() - 1 {
			if _, err := res.Exec(); err != nil {
				return err
			}
		}
		if err := res.QueryRow().Scan(&state); err != nil {
			return err
		}
		return res.Close()
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", jobs.ErrNotFound
	}
	return state, err
}

// Unlock removes owner's row, puts back to pending what it still leases
// (a run that ends has recorded all it claimed; anything left was never
// sent), and, if the job's lock columns name owner, names the live run
// that beat last instead, or none.
func (s *Store) Unlock(ctx context.Context, jobID int64, owner jobs.LockOwner) error {
	defer s.leases.remove(jobID, owner.Token)
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM job_runners WHERE job_id = $1 AND token = $2`, jobID, owner.Token)
	b.Queue(`UPDATE requests SET status = 'pending', lease_owner = NULL, lease_until = NULL
		WHERE id IN (SELECT id FROM requests WHERE job_id = $1 AND status = 'running' AND lease_owner = $2
			AND NOT `+inOpenBatch+` FOR UPDATE SKIP LOCKED)`, jobID, owner.Token)
	b.Queue(`UPDATE jobs SET (lock_token, lock_pid, lock_host, lock_heartbeat) = (SELECT token, pid, host, heartbeat
		FROM job_runners r WHERE r.job_id = $1 AND `+runnerLive+` ORDER BY heartbeat DESC, token LIMIT 1)
		WHERE id = $1 AND lock_token = $2`, jobID, owner.Token)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("unlock job: %w", err)
	}
	return nil
}

// LiveRunners lists the runs whose rows are live, oldest first, each with
// the requests it leases now.
func (s *Store) LiveRunners(ctx context.Context, jobID int64) ([]jobs.RunnerInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.token, r.pid, r.host, r.started_at, r.heartbeat, coalesce(l.n, 0)
		FROM job_runners r LEFT JOIN (SELECT lease_owner, count(*) AS n FROM requests
			WHERE job_id = $1 AND status = 'running' AND lease_owner IS NOT NULL GROUP BY lease_owner) l
			ON l.lease_owner = r.token
		WHERE r.job_id = $1 AND `+runnerLive+` ORDER BY r.started_at, r.token`, jobID)
	if err != nil {
		return nil, fmt.Errorf("live runners: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobs.RunnerInfo, error) {
		var r jobs.RunnerInfo
		var started, beat int64
		err := row.Scan(&r.Owner.Token, &r.Owner.PID, &r.Owner.Host, &started, &beat, &r.Running)
		r.StartedAt, r.Heartbeat = fromMillis(started), fromMillis(beat)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("live runners: %w", err)
	}
	return list, nil
}
