package jobs

import (
	"context"
	"time"
)

// Amount is an amount of a budget: tokens, and a cost in the prices'
// currency.
type Amount struct {
	Tokens int64
	Cost   float64
}

// BucketTake asks one of a job's shared rate buckets for a grant. The
// bucket refills continuously at PerMinute a minute up to Burst; a take
// with less than Least in the bucket takes nothing, otherwise it takes up
// to Want (what the bucket holds, if less).
type BucketTake struct {
	// PerMinute is the rate (the run's --rpm, or --tpm in tokens); 0 leaves
	// the bucket alone.
	PerMinute float64
	// Burst is the most the bucket saves up while nobody takes from it.
	Burst float64
	// Want is the most to take; Least the least worth taking, at most Want
	// and Burst.
	Want, Least float64
}

// RateGrant is what a TakeRate granted.
type RateGrant struct {
	// Requests and Tokens are the grants of the two buckets (0 when
	// nothing was taken); a run may send them whenever it likes.
	Requests, Tokens float64
	// RequestsLeft and TokensLeft are what each bucket held before the
	// take, refilled to now: with less than Least, when it will hold
	// Least follows from the rate.
	RequestsLeft, TokensLeft float64
	// PausedFor is how long the job's dispatch is paused from now (0: not
	// paused).
	PausedFor time.Duration
}

// LimitsView is the state of a job's shared limits as one operation left
// them.
type LimitsView struct {
	// PausedFor is how long the job's dispatch is paused from now (0: not
	// paused).
	PausedFor time.Duration
	// Spent is what the job has spent, as the runs that joined its budget
	// told; Held is what the live runs hold reserved for requests in
	// flight.
	Spent, Held Amount
}

// SharedLimits is implemented by an engine on which several runs, on any
// hosts, work one job (PostgreSQL; see Runners): the runs share the job's
// rate limits, its pause and its budget through the database, so that
// --rpm, --tpm, --max-tokens and --max-cost hold for the job as a whole
// rather than for each run. (--concurrency stays each run's own.)
//
// Every method is one atomic statement, with no transaction held between
// calls, and measures time by the database's clock, so that hosts whose
// clocks disagree still share one rate and one pause. The methods return
// ErrNotFound for a job whose limits no run has joined.
//
// What holds, for runs that give the same --rpm and --tpm:
//
//   - Rates: the requests (tokens) all runs take from a job's bucket in
//     any period T are at most Burst + T × PerMinute/60s. A run sends only
//     what it was granted, so the job sends no more than that plus what
//     runs hold granted and unsent. A run with another rate refills the
//     bucket at its own rate while it takes, so with different rates the
//     job's lies between them.
//   - Pause: Pause never shortens a pause, and every operation reports the
//     pause in force, so a run that learns of one stops dispatching within
//     its polling period.
//   - Budget: Reserve grants an amount only if the job's Spent, the Held of
//     every live run and the amount fit the caller's limit, all checked
//     and held in one statement; so reservations never exceed a limit, and
//     a request whose usage stays within its reservation never makes the
//     job spend more than the limit. What a run holds lapses when the run
//     has not renewed it (with Reserve or Settle) for its hold period, as
//     when its host is lost, so that a dead run blocks nobody; a run
//     stopped (SIGSTOP) for longer may still spend what it held, at most
//     its requests in flight then.
//     Spent counts what runs settled, from the largest spent a joining run
//     brought (what the job's results say); what runs without a budget
//     spend is not settled, so it counts only from the next run that joins.
type SharedLimits interface {
	// JoinLimits makes run (a name unique to one run) a party to the job's
	// limits with nothing held, creating them if no run did before; Spent
	// becomes the larger of the stored one and spent, what the job's
	// recorded results say it spent.
	JoinLimits(ctx context.Context, jobID int64, run string, spent Amount, hold time.Duration) (LimitsView, error)
	// LeaveLimits ends run's part: what it still holds is released.
	LeaveLimits(ctx context.Context, jobID int64, run string) error
	// TakeRate takes from the job's request and token buckets at once.
	TakeRate(ctx context.Context, jobID int64, requests, tokens BucketTake) (RateGrant, error)
	// Pause pauses the job's dispatch for d from now, unless it is paused
	// longer already, and returns the pause in force.
	Pause(ctx context.Context, jobID int64, d time.Duration) (time.Duration, error)
	// ReadLimits reads the job's limits.
	ReadLimits(ctx context.Context, jobID int64) (LimitsView, error)
	// Reserve adds amount to what run holds if Spent, Held and amount
	// together fit limit (a zero Tokens or Cost of limit: no such limit),
	// renewing the hold for hold from now, and reports whether it did. The
	// view says where the job stands after the reservation, or, when it
	// did not fit, a moment after the check: what kept it from fitting may
	// have been settled since.
	Reserve(ctx context.Context, jobID int64, run string, amount, limit Amount, hold time.Duration) (bool, LimitsView, error)
	// Settle takes release off what run holds (not below zero: a lapsed
	// hold releases nothing) and adds spent to Spent, renewing the hold for
	// hold from now; Settle of nothing only renews it.
	Settle(ctx context.Context, jobID int64, run string, release, spent Amount, hold time.Duration) (LimitsView, error)
}
