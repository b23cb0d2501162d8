package jobs

// Progress is what a run has done since it started, counted as its
// attempts end (before they are committed), so that reading it costs no
// query.
type Progress struct {
	// Succeeded and Failed count the requests this run finished.
	Succeeded, Failed int64
	// Retrying counts the requests this run put back to pending after a
	// retryable error and has not finished since: those waiting out their
	// backoff or being sent again. A request a fatal error or an
	// interruption hands back is not counted, nor one an earlier run left
	// pending after a retryable error until this run has tried it.
	Retrying int64
	// Usage is the usage reported per requested model; BatchUsage the part
	// of it answered through provider batches (priced at the discount).
	Usage      map[string]Usage
	BatchUsage map[string]Usage
	// Tokens is the total tokens reported, all models together.
	Tokens int64
	// Errors tallies this run's failed attempts by class, each counted as
	// it ends, whatever becomes of its request (retried, failed, held in
	// an outage, or the run stopped). A reader diffs two snapshots to
	// tell what failed in between.
	Errors map[ErrorClass]ErrorTally
	// State is the run's pacing now: effective concurrency and in flight.
	State RunState
}

// ErrorTally is how many attempts of a run failed with one error class,
// with an example.
type ErrorTally struct {
	Count int64
	// First and Last are the first and the latest of these failures,
	// without their Body (the message says what happened; the bodies are
	// kept with the results).
	First, Last Failure
}
