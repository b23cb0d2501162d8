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
// It is the only package that knows HTTP. It talks to storage through
// jobs.Queue and never prints.
package worker
