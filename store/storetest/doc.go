// Package storetest is the store-contract suite: the behaviours the command
// line and the worker rely on from any jobs.Store, checked through that
// interface alone, so that every engine (store/sqlite, store/postgres) is
// held to the same promises. An engine's tests call Run with a
// constructor of fresh, empty stores:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) jobs.Store { return mustOpenStore(t) })
//	}
//
// What it checks: claims (input order, only due requests, never one request
// to two claimers), exactly-once recording (a second outcome, or one after a
// cancel or a recovery, changes nothing), locks and heartbeats, imports (all
// or nothing, duplicate custom_ids, lines kept invalid), the cache pass,
// statistics, summaries and reports, the job-wide changes (retry,
// cancel, leftovers, waits, settings, run ends, run state), and provider
// batches (a request put in one is the batch's until its answer is
// recorded, once, or the batch is collected; the usage answered in
// batches is counted apart). The cases of one run per job are skipped for
// an engine that implements jobs.Runners (its own tests hold it to leases
// instead). RunCopy and CopyChain hold a pair of engines to jobs.Copy: every
// row of a job, exactly, from one database to another (jobs.JobCopier).
//
// Time: the suite moves time only through the arguments the interface
// takes (Claim's now, EndRun's at, the times of attempts and results it
// records). Where an engine stamps a time itself (a job's creation, a lock's
// heartbeat, Stats.At) it asserts only that the time is there and in order,
// so an engine may use its own clock or its database's. The lock tests wait
// a few milliseconds of real time for a heartbeat to go stale.
//
// It imports only jobs and the standard library, and is imported only by
// tests.
package storetest
