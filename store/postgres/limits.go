package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/llmbatch/llmbatch/jobs"
)

var _ jobs.SharedLimits = (*Store)(nil)

// The runs sharing a job share its limits through its row of job_limits
// (migration 0002): each method below is one statement on that row, whose
// lock orders the runs' takes and reservations, and the SQL functions
// llmbatch_* of the migration do the arithmetic.

// viewColumns read a jobs.LimitsView off a job_limits row (see scanView),
// counting only the holds that have not lapsed.
const viewColumns = `greatest(0, paused_until - llmbatch_now_ms()), spent_tokens, spent_cost,
	llmbatch_held_tokens(llmbatch_live_holds(holds, llmbatch_now_ms())),
	llmbatch_held_cost(llmbatch_live_holds(holds, llmbatch_now_ms()))`

func scanView(row scanner) (jobs.LimitsView, error) {
	var v jobs.LimitsView
	var paused int64
	err := row.Scan(&paused, &v.Spent.Tokens, &v.Spent.Cost, &v.Held.Tokens, &v.Held.Cost)
	v.PausedFor = msDuration(paused)
	return v, err
}

// limitsErr wraps err for what, as jobs.ErrNotFound when the job has no
// limits (no row, or no job for JoinLimits to make them for).
func limitsErr(what string, err error) error {
	var pe *pgconn.PgError
	if errors.Is(err, pgx.ErrNoRows) || (errors.As(err, &pe) && pe.Code == foreignKeyViolation) {
		return fmt.Errorf("%s: %w", what, jobs.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// foreignKeyViolation is PostgreSQL's SQLSTATE for a row referring to one
// that does not exist.
const foreignKeyViolation = "23503"

// ceilMillis is d in whole milliseconds, rounded up: a pause or a hold
// never ends early.
func ceilMillis(d time.Duration) int64 {
	return int64(math.Ceil(float64(d) / float64(time.Millisecond)))
}

// JoinLimits makes run a party to the job's limits, creating them on the
// first join: Spent becomes the larger of the stored one and spent, and
// run holds nothing, until hold from now.
func (s *Store) JoinLimits(ctx context.Context, jobID int64, run string, spent jobs.Amount, hold time.Duration) (jobs.LimitsView, error) {
	v, err := scanView(s.pool.QueryRow(ctx, `INSERT INTO job_limits AS l (job_id, spent_tokens, spent_cost, holds)
		VALUES ($1, $3::bigint, $4::float8, llmbatch_hold_add('{}', $2::text, 0, 0, llmbatch_now_ms() + $5::bigint))
		ON CONFLICT (job_id) DO UPDATE SET
			spent_tokens = greatest(l.spent_tokens, excluded.spent_tokens),
			spent_cost = greatest(l.spent_cost, excluded.spent_cost),
			holds = llmbatch_hold_add(llmbatch_live_holds(l.holds, llmbatch_now_ms()) - $2::text, $2::text,
				0, 0, llmbatch_now_ms() + $5::bigint)
		RETURNING `+viewColumns, jobID, run, spent.Tokens, spent.Cost, ceilMillis(hold)))
	if err != nil {
		return v, limitsErr("join shared limits", err)
	}
	return v, nil
}

// LeaveLimits releases what run holds.
func (s *Store) LeaveLimits(ctx context.Context, jobID int64, run string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE job_limits SET holds = llmbatch_live_holds(holds, llmbatch_now_ms()) - $2::text
		WHERE job_id = $1`, jobID, run)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	if err != nil {
		return limitsErr("leave shared limits", err)
	}
	return nil
}

// takeQuery refills both buckets and takes the grants, reading the row
// locked (FOR UPDATE) so that what it returns of the balances before the
// take is what the update started from, however many runs take at once.
// A bucket the take leaves alone (a rate of 0) keeps its time, so that it
// loses none of its refill.
const takeQuery = `WITH cur AS (
		SELECT job_id, llmbatch_now_ms() AS now,
			llmbatch_refill(req_balance, req_at, llmbatch_now_ms(), $2::float8, $3::float8) AS req,
			llmbatch_refill(tok_balance, tok_at, llmbatch_now_ms(), $6::float8, $7::float8) AS tok
		FROM job_limits WHERE job_id = $1 FOR UPDATE
	), g AS (
		SELECT cur.*, llmbatch_grant(req, $2::float8, $4::float8, $5::float8) AS req_g,
			llmbatch_grant(tok, $6::float8, $8::float8, $9::float8) AS tok_g
		FROM cur
	)
	UPDATE job_limits l SET
		req_balance = g.req - g.req_g,
		req_at = CASE WHEN $2::float8 > 0 THEN greatest(l.req_at, g.now) ELSE l.req_at END,
		tok_balance = g.tok - g.tok_g,
		tok_at = CASE WHEN $6::float8 > 0 THEN greatest(l.tok_at, g.now) ELSE l.tok_at END
	FROM g WHERE l.job_id = g.job_id
	RETURNING g.req_g, g.tok_g, g.req, g.tok, greatest(0, l.paused_until - g.now)`

// TakeRate takes from the job's request and token buckets.
func (s *Store) TakeRate(ctx context.Context, jobID int64, requests, tokens jobs.BucketTake) (jobs.RateGrant, error) {
	var g jobs.RateGrant
	var paused int64
	err := s.pool.QueryRow(ctx, takeQuery, jobID,
		requests.PerMinute, requests.Burst, requests.Want, requests.Least,
		tokens.PerMinute, tokens.Burst, tokens.Want, tokens.Least).
		Scan(&g.Requests, &g.Tokens, &g.RequestsLeft, &g.TokensLeft, &paused)
	if err != nil {
		return g, limitsErr("take from shared rate", err)
	}
	g.PausedFor = msDuration(paused)
	return g, nil
}

// Pause pauses the job's dispatch for d from now, unless it is paused
// longer already, and returns the pause in force.
func (s *Store) Pause(ctx context.Context, jobID int64, d time.Duration) (time.Duration, error) {
	var paused int64
	err := s.pool.QueryRow(ctx, `UPDATE job_limits
		SET paused_until = greatest(paused_until, llmbatch_now_ms() + $2::bigint)
		WHERE job_id = $1 RETURNING greatest(0, paused_until - llmbatch_now_ms())`, jobID, ceilMillis(d)).Scan(&paused)
	if err != nil {
		return 0, limitsErr("pause shared dispatch", err)
	}
	return msDuration(paused), nil
}

// ReadLimits reads the job's limits.
func (s *Store) ReadLimits(ctx context.Context, jobID int64) (jobs.LimitsView, error) {
	v, err := scanView(s.pool.QueryRow(ctx, `SELECT `+viewColumns+` FROM job_limits WHERE job_id = $1`, jobID))
	if err != nil {
		return v, limitsErr("read shared limits", err)
	}
	return v, nil
}

// Reserve adds amount to run's hold if it fits limit beside what the job
// spent and every live run holds. The condition is the update's WHERE, so
// that of two runs reserving at once the second is checked against the
// row the first left.
func (s *Store) Reserve(ctx context.Context, jobID int64, run string, amount, limit jobs.Amount, hold time.Duration) (bool, jobs.LimitsView, error) {
	v, err := scanView(s.pool.QueryRow(ctx, `UPDATE job_limits SET holds = llmbatch_hold_add(
			llmbatch_live_holds(holds, llmbatch_now_ms()), $2::text, $3::bigint, $4::float8, llmbatch_now_ms() + $7::bigint)
		WHERE job_id = $1
		AND ($5::bigint = 0 OR spent_tokens + llmbatch_held_tokens(llmbatch_live_holds(holds, llmbatch_now_ms())) + $3::bigint <= $5::bigint)
		AND ($6::float8 = 0 OR spent_cost + llmbatch_held_cost(llmbatch_live_holds(holds, llmbatch_now_ms())) + $4::float8 <= $6::float8)
		RETURNING `+viewColumns, jobID, run, amount.Tokens, amount.Cost, limit.Tokens, limit.Cost, ceilMillis(hold)))
	if err == nil {
		return true, v, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, v, limitsErr("reserve shared budget", err)
	}
	v, err = s.ReadLimits(ctx, jobID) // it did not fit, or the job has no limits
	return false, v, err
}

// Settle takes release off run's hold, adds spent to what the job spent,
// and renews the hold.
func (s *Store) Settle(ctx context.Context, jobID int64, run string, release, spent jobs.Amount, hold time.Duration) (jobs.LimitsView, error) {
	v, err := scanView(s.pool.QueryRow(ctx, `UPDATE job_limits SET holds = llmbatch_hold_add(
			llmbatch_live_holds(holds, llmbatch_now_ms()), $2::text, -$3::bigint, -$4::float8, llmbatch_now_ms() + $7::bigint),
			spent_tokens = spent_tokens + $5::bigint, spent_cost = spent_cost + $6::float8
		WHERE job_id = $1 RETURNING `+viewColumns, jobID, run, release.Tokens, release.Cost, spent.Tokens, spent.Cost, ceilMillis(hold)))
	if err != nil {
		return v, limitsErr("settle shared budget", err)
	}
	return v, nil
}
