// Package worker runs a job: a dispatcher claims batches of pending
// requests, a bounded pool of workers (an errgroup with a limit) sends them
// to the OpenAI-compatible API, a retry policy decides what becomes of each
// failed attempt, and a single writer records outcomes in group commits.
//
// Before each request goes, a pacer makes it wait for the run's limits
// (--rpm and --tpm token buckets), for what the provider said (Retry-After
// and x-ratelimit-* headers pause or space out dispatch for every worker),
// and for the adaptive controller (AIMD on the concurrency and, when
// answers come too fast for concurrency to matter, on the rate). A queue
// that is a jobs.RunStateStore gets the run's pacing saved every second.
//
// An outage pauses the job, not its requests: when calls keep failing
// without an answer, dispatch stops and one probe at a time tests the
// endpoint (outage.go); an endpoint never reached stops the run with an
// *UnreachableError. A budget reserves each request's worst case and waits
// for the reservations in flight before it counts as reached (budget.go).
// With Options.Shared the rate limits, the pause and the budget are the
// job's, kept with the other runs working it through the database
// (shared.go). BatchRunner sends a job through the provider's Batch API
// instead (batch_*.go).
//
// A call to a plain-HTTP endpoint with no proxy goes direct (direct.go):
// HTTP/1.1 on connections the workers write and read themselves, without
// net/http's transport and its goroutines per connection; HTTPS, proxies
// and a caller's own transport use net/http.
//
// It is the only package that knows HTTP. It imports jobs and
// internal/jsonscan, talks to storage through jobs.Queue, reports progress
// as a jobs.Progress, and never prints.
package worker
