package jobs

import (
	"context"
	"time"
)

// RunStateStaleAfter is how old a saved RunState may be and still describe
// a live run. A run saves its state about every second, so a state older
// than this belongs to a run that has ended or died.
const RunStateStaleAfter = 5 * time.Second

// RunState is how a live run is pacing itself: its limits and where its
// adaptive controller stands. The run saves it periodically for status.
type RunState struct {
	// Concurrency is the effective concurrency: how many calls the adaptive
	// controller lets be in flight now. MaxConcurrency is --concurrency,
	// the most it grows back to.
	Concurrency    int
	MaxConcurrency int
	// InFlight is how many calls were in flight when the state was saved.
	InFlight int
	// RPM and TPM are the configured limits (requests and tokens per
	// minute); 0 means none.
	RPM, TPM int
	// AdaptiveRPM is the dispatch rate, in requests per minute, the
	// controller has learned from the provider's 429s and 503s; 0 while it
	// has learned none.
	AdaptiveRPM int
	// PausedUntil is when dispatch resumes after a Retry-After or an
	// exhausted x-ratelimit-remaining-* header; zero when not paused.
	PausedUntil time.Time
	// Outage, when not empty, is why dispatch stopped as a whole: calls
	// failed without a usable answer and nothing succeeded in between
	// ("127.0.0.1:1 unreachable (connection refused)"). One request at a
	// time probes the endpoint meanwhile: since OutageSince, next at
	// NextProbe.
	Outage      string
	OutageSince time.Time
	NextProbe   time.Time
	// UpdatedAt is when the run saved this state.
	UpdatedAt time.Time
}

// Live reports whether s was saved recently enough, as of now, to describe
// a run that is still going.
func (s RunState) Live(now time.Time) bool {
	return !s.UpdatedAt.IsZero() && now.Sub(s.UpdatedAt) <= RunStateStaleAfter
}

// RunStateStore keeps the RunState of the run working each job. A Queue
// that implements it gets the runner's state saved about every second.
type RunStateStore interface {
	// SaveRunState replaces the job's run state.
	SaveRunState(ctx context.Context, jobID int64, s RunState) error
	// RunState returns the job's last saved run state, or ErrNotFound when
	// none is saved (no run, or the last one ended cleanly).
	RunState(ctx context.Context, jobID int64) (RunState, error)
	// ClearRunState forgets the job's run state, as a run that ends does.
	ClearRunState(ctx context.Context, jobID int64) error
}
