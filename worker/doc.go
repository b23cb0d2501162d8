// Package worker runs a job: a dispatcher claims batches of pending
// requests, a bounded pool of workers (an errgroup with a limit) sends them
// to the OpenAI-compatible API, a retry policy decides what becomes of each
// failed attempt, and a single writer records outcomes in group commits.
//
// It is the only package that knows HTTP. It talks to storage through
// jobs.Queue and never prints.
package worker
