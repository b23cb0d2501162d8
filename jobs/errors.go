package jobs

import "errors"

// Sentinel errors shared by every package. Wrap them with context; compare
// with errors.Is.
var (
	// ErrNotFound: no job (or request) of that name exists.
	ErrNotFound = errors.New("not found")
	// ErrJobChanged: a job of that name exists but was imported from
	// different content.
	ErrJobChanged = errors.New("job exists with different content")
	// ErrLocked: another live run holds the job's lock.
	ErrLocked = errors.New("job is locked by another run")
	// ErrLockLost: the run's lock was taken over by another run.
	ErrLockLost = errors.New("job lock lost")
	// ErrCancelled: the job was cancelled and cannot run again.
	ErrCancelled = errors.New("job is cancelled")
	// ErrBadTransition: a status change the life cycle does not allow.
	ErrBadTransition = errors.New("invalid status transition")
	// ErrFatalAPI: the API answered in a way that every further request
	// would repeat (bad key, no balance, forbidden); the run stops.
	ErrFatalAPI = errors.New("fatal API error")
	// ErrBudget: the run stopped claiming because the next request's worst
	// case would have crossed the token budget; nothing was lost.
	ErrBudget = errors.New("budget reached")
	// ErrInterrupted: the run was stopped by a signal before the job ended.
	ErrInterrupted = errors.New("interrupted")
	// ErrNeedsWrite: the database can be read only after a write this
	// process cannot make (a migration, or the commits of a -wal file
	// without its -shm file).
	ErrNeedsWrite = errors.New("database needs a write before it can be read")
)
