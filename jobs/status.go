package jobs

import "fmt"

// Status is the state of one request in its life cycle:
//
//	pending ──claim──▶ running ──2xx──────────────▶ succeeded
//	   ▲                  │ ──permanent error──────▶ failed
//	   │                  │ ──retryable error──────▶ pending (attempts+1, not before now+backoff)
//	   └──────────────────┘ ──interrupted / orphaned▶ pending (no attempt consumed)
//	failed ──retry──▶ pending
//	pending ──cancel──▶ cancelled
type Status string

const (
	// StatusPending waits to be claimed, no earlier than its not-before time.
	StatusPending Status = "pending"
	// StatusRunning is claimed by a live run; a dead run's running requests
	// are orphans and go back to pending when the next run starts.
	StatusRunning Status = "running"
	// StatusSucceeded has exactly one recorded result.
	StatusSucceeded Status = "succeeded"
	// StatusFailed failed permanently or ran out of attempts; its last error
	// is kept. The retry command puts it back to pending.
	StatusFailed Status = "failed"
	// StatusCancelled was still pending when its job was cancelled.
	StatusCancelled Status = "cancelled"
)

// Statuses lists every status in life-cycle order.
var Statuses = []Status{StatusPending, StatusRunning, StatusSucceeded, StatusFailed, StatusCancelled}

// transitions is the one place the life cycle is written down; the store's
// CHECK constraint and its UPDATE statements follow it.
var transitions = map[Status][]Status{
	StatusPending:   {StatusRunning, StatusCancelled},
	StatusRunning:   {StatusSucceeded, StatusFailed, StatusPending, StatusCancelled},
	StatusFailed:    {StatusPending},
	StatusSucceeded: nil,
	StatusCancelled: nil,
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// Final reports whether a request in status s will not be sent again by a run.
func (s Status) Final() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled
}

// CanTransition reports whether a request may move from one status to another.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// CheckTransition returns ErrBadTransition, wrapped with both statuses, when
// the move is not allowed.
func CheckTransition(from, to Status) error {
	if !CanTransition(from, to) {
		return fmt.Errorf("%w: %s to %s", ErrBadTransition, from, to)
	}
	return nil
}

// JobState is the state of a whole job.
type JobState string

const (
	// JobActive is a job that runs can work on.
	JobActive JobState = "active"
	// JobCancelled was stopped for good; its results stay exportable.
	JobCancelled JobState = "cancelled"
)
