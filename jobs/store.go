package jobs

import (
	"context"
	"fmt"
	"time"
)

// Outcome is what became of one claimed request: the writer records it,
// together with others, in one transaction.
type Outcome struct {
	Request Request
	// Attempt is the HTTP attempt that ended; nil when the request was
	// handed back before an attempt finished (an interruption).
	Attempt *Attempt
	// Next is the status the request moves to: succeeded, failed or pending.
	Next Status
	// CountAttempt says whether Attempt uses up one of the request's
	// attempts. Interruptions and fatal errors do not.
	CountAttempt bool
	// NotBefore is when a request put back to pending may be claimed again.
	NotBefore time.Time
	Result    *Result
	Failure   *Failure
}

// Queue is the part of the store a run's worker uses.
type Queue interface {
	// Claim atomically moves up to n pending requests of the job whose
	// not-before time has passed to running and returns them in claim order.
	// It returns none when the job is not active.
	Claim(ctx context.Context, jobID int64, n int, now time.Time) ([]Request, error)
	// Record applies the outcomes in one transaction. An outcome for a
	// request that is no longer running is ignored, so that a result is
	// never recorded twice; of two outcomes for one request in a batch, a
	// success that used one attempt and set nothing else applies first.
	Record(ctx context.Context, outcomes []Outcome) error
	// Waiting returns how many requests of an active job are pending and the
	// earliest time one of them may be claimed. On an engine whose runs
	// share a job (Runners) it also counts, as due at no set time, the
	// requests other runs hold, so that a run with nothing left to claim
	// stays to take them over should their run be lost.
	Waiting(ctx context.Context, jobID int64) (n int, next time.Time, err error)
}

// Store is the whole of what the command line needs from storage; every
// engine implements it (store.Open picks one by the database's name), and
// the store-contract suite (store/storetest) holds each to it.
type Store interface {
	Queue
	RunStateStore
	Reporter
	JobSettings
	Summaries
	ProviderBatches
	// Import creates the job and stores every request src yields, in one
	// transaction. If src reports invalid lines nothing is stored and the
	// *ValidationError is returned.
	Import(ctx context.Context, job Job, src RequestSource) (Job, error)
	// Job returns the job of that name, or ErrNotFound.
	Job(ctx context.Context, name string) (Job, error)
	// Jobs lists every job with its counts, oldest first.
	Jobs(ctx context.Context) ([]JobSummary, error)
	// Lock takes the job's lock for owner, taking it over from a holder
	// whose heartbeat is older than staleAfter or that dead(holder) says is
	// gone. It returns a *LockedError when a live run holds it; an engine
	// whose runs share a job (Runners) admits every run instead, leasing
	// its claims for staleAfter.
	Lock(ctx context.Context, jobID int64, owner LockOwner, staleAfter time.Duration, dead func(LockOwner) bool) error
	// Heartbeat renews owner's lock, or returns ErrLockLost; it returns
	// ErrCancelled, with the lock renewed, once the job was cancelled.
	Heartbeat(ctx context.Context, jobID int64, owner LockOwner) error
	// Unlock releases owner's lock, if owner still holds it.
	Unlock(ctx context.Context, jobID int64, owner LockOwner) error
	// Recover puts the job's running requests (orphans of a dead run) back
	// to pending without using an attempt, and returns how many.
	Recover(ctx context.Context, jobID int64) (int, error)
	// Stats returns the job's counts, tokens, attempts and error classes.
	Stats(ctx context.Context, jobID int64) (Stats, error)
	// Records calls fn for each request of the job in input order, without
	// its body (Request.Body is nil). It returns fn's first error.
	Records(ctx context.Context, jobID int64, fn func(Record) error) error
	// RecordsWith is Records reading what opts asks for besides.
	RecordsWith(ctx context.Context, jobID int64, opts RecordOptions, fn func(Record) error) error
	// Retry puts the job's failed requests back to pending with their
	// attempt counts reset, and returns how many.
	Retry(ctx context.Context, jobID int64) (int, error)
	// Cancel marks the job cancelled and its pending requests cancelled
	// (its running ones too when no live run holds them), and returns how
	// many. It returns ErrCancelled for a job cancelled before.
	Cancel(ctx context.Context, jobID int64) (int, error)
	// CancelLeftovers cancels what a cancelled job still has pending or
	// running (what its run put back after the cancel), once no run works
	// it; it changes nothing of an active job.
	CancelLeftovers(ctx context.Context, jobID int64) (int, error)
	// ClearWaits makes every pending request of the job due now, and
	// returns how many waited.
	ClearWaits(ctx context.Context, jobID int64) (int, error)
	// InvalidLines returns the messages of the first limit lines kept
	// invalid at import (import --skip-invalid) and how many there are.
	InvalidLines(ctx context.Context, jobID int64, limit int) ([]string, int, error)
	// NewCachePass returns a pass that answers the job's pending requests
	// from the results of identical requests of the database.
	NewCachePass(jobID int64) CachePass
	Close() error
}

// RecordOptions say what Store.RecordsWith reads besides what Records
// reads.
type RecordOptions struct {
	// Bodies reads each request's body into Request.Body: the request as it
	// is sent (an export's --with-request). Records leaves it out, since
	// bodies are most of what a job stores.
	Bodies bool
}

// JobSettings keeps what a job remembers of how it is sent and how its
// last run ended.
type JobSettings interface {
	// SaveSettings replaces the job's stored settings.
	SaveSettings(ctx context.Context, jobID int64, set Settings) error
	// EndRun stores why the job's run ended, with its message.
	EndRun(ctx context.Context, jobID int64, end RunEnd, message string, at time.Time) error
}

// Summaries reads what a run needs to know of a job before it starts.
type Summaries interface {
	// BeginSummary reads the job and its counts at once, and fixes the
	// moment Summary.Finish adds the usage of (an open read).
	BeginSummary(ctx context.Context, jobID int64) (Summary, error)
	// Models and OpenModels list, in name order, the models the job's
	// requests ask for (all of them, or those not yet final).
	Models(ctx context.Context, jobID int64) ([]string, error)
	OpenModels(ctx context.Context, jobID int64) ([]string, error)
}

// Summary is a job's counts and usage as they stood at one moment.
type Summary interface {
	// Counts is the job, its counts by status, how many were answered
	// from the cache (Stats.Cached) and how many are in open provider
	// batches (Stats.InBatches); no usage yet.
	Counts() Stats
	// CountAttempts adds the attempts made (Stats.Attempts), which a
	// run's start does not need and its summary line does; before Finish.
	CountAttempts(ctx context.Context) error
	// Finish adds the usage per model and ends the summary.
	Finish(ctx context.Context) (Stats, error)
	// Close ends the summary; safe after Finish.
	Close()
}

// CachePass answers pending requests from the cache, a chunk at a time.
type CachePass interface {
	// Next answers what it can among the next n requests; more says
	// whether any are left to look at.
	Next(ctx context.Context, n int) (more bool, err error)
	// Answered counts the requests answered so far.
	Answered() int
}

// RequestSource yields the requests of an input file in order, as Import
// consumes them.
type RequestSource interface {
	// Next returns the next valid request, or io.EOF at the end. Any other
	// error (an unreadable file) ends the import.
	Next() (Request, error)
	// Reject reports a line the consumer found invalid, such as a second
	// use of a custom_id.
	Reject(line int, reason string)
	// Err returns, after io.EOF, a *ValidationError if any line was invalid.
	Err() error
}

// Fingerprinter is a RequestSource that identifies its content once read to
// the end; Import stores the fingerprint with the job, so that a later run
// can tell an unchanged file from a changed one without importing it again.
type Fingerprinter interface {
	Fingerprint() string
}

// LockOwner identifies a run holding a job's lock.
type LockOwner struct {
	// Token is unique to one run.
	Token string
	PID   int
	Host  string
}

// LockedError says which run holds the lock. It matches ErrLocked.
type LockedError struct {
	Holder    LockOwner
	Heartbeat time.Time
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("job is being run by pid %d on %s (last heartbeat %s)",
		e.Holder.PID, e.Holder.Host, e.Heartbeat.Format(time.RFC3339))
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// JobSummary is a job with its counts per status.
type JobSummary struct {
	Job
	Counts map[Status]int
}

// ClassCount is how often an error class occurred, with one example message.
type ClassCount struct {
	Class   ErrorClass `json:"class"`
	Count   int        `json:"count"`
	Example string     `json:"example"`
}

// ModelUsage is the usage of one model's recorded results.
type ModelUsage struct {
	Model   string
	Results int
	Usage   Usage
	// WithoutUsage counts the results whose answer reported no usage the
	// store could read: Usage is then a lower bound.
	WithoutUsage int
	// BatchResults counts the results answered through a provider batch,
	// and BatchUsage is their part of Usage (priced at the batch discount).
	BatchResults int
	BatchUsage   Usage
}

// Stats describes a job's progress.
type Stats struct {
	Job    Job
	Counts map[Status]int
	// InBatches counts the running requests that are in open provider
	// batches (ProviderBatches), not in flight on this host.
	InBatches int
	Usage     Usage
	// ResultsWithoutUsage counts the results (not from the cache) whose
	// answer reported no usage the store could read: Usage and any cost are
	// then lower bounds.
	ResultsWithoutUsage int
	Attempts            int
	// Cached counts the requests answered from an earlier identical
	// request's result instead of the API; their tokens are not in Usage.
	Cached int
	// Errors counts failed attempts by class, most frequent first.
	Errors []ClassCount
	// Models splits the results' usage by requested model, in name order.
	Models []ModelUsage
	// Latencies of recorded results, and time to first token of the
	// streamed ones (zero when none was streamed), by nearest rank.
	LatencyP50, LatencyP95, LatencyP99 time.Duration
	TTFTP50, TTFTP95, TTFTP99          time.Duration
	// At is when the statistics were read: where the throughput windows end.
	At time.Time
	// Last1m and Last5m are the throughput of the last minute and of the
	// last five minutes before At.
	Last1m, Last5m Throughput
	// FirstAttempt is when the job's first attempt started and LastAttempt
	// when its last one ended; both zero when there is none.
	FirstAttempt, LastAttempt time.Time
	// Run is the pacing of the run working the job now, or nil when no
	// live run has saved its state (see RunState.Live).
	Run *RunState
	// Batches are the job's provider batches, oldest first, for status;
	// Stats leaves it nil (ProviderBatches.Batches reads it).
	Batches []ProviderBatch
}
