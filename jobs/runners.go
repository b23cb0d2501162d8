package jobs

import (
	"context"
	"time"
)

// RunnerInfo is a run working a job, as an engine that lets several runs
// share a job sees it.
type RunnerInfo struct {
	Owner     LockOwner
	StartedAt time.Time
	// Heartbeat is when the run last renewed its claim on the job and the
	// leases of its requests.
	Heartbeat time.Time
	// Running counts the requests it has claimed and not yet recorded.
	Running int
}

// Runners is implemented by an engine on which several runs, on any
// hosts, work one job at once (PostgreSQL). There Lock admits every run
// (it never returns a *LockedError) and makes the store's owner the one
// its Claim and Record act for: Claim leases what it takes to that owner
// until a lease period from now, Heartbeat extends the owner's leases and
// puts back to pending, without using an attempt, the requests of leases
// that expired (their run was killed, its host lost, its network cut);
// Record applies an outcome only while its request is running under the
// owner's lease, so a run that lost its lease never records over another
// run's result; Recover puts back only what dead runs left. An engine
// without it (SQLite) keeps one run per job.
type Runners interface {
	// LiveRunners lists the runs working the job now (their heartbeat is
	// within a lease period), oldest first.
	LiveRunners(ctx context.Context, jobID int64) ([]RunnerInfo, error)
}
