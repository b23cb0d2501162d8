// Package postgres is the PostgreSQL storage engine, for a job shared by
// runners on many hosts: it keeps jobs, requests, attempts and results in
// one database, applies its embedded migrations under an advisory lock,
// imports input files with COPY in one transaction, claims work with FOR
// UPDATE SKIP LOCKED, records outcomes exactly once, and reads statistics
// and results back. It implements jobs.Store, as store/sqlite does; commands
// reach it through store.Open with a postgres:// or postgresql:// DSN. It
// imports jobs and pgx (pgxpool), no ORM.
//
// Files, by noun (two authors wrote them; each file has one):
//
//	doc.go            this comment
//	store.go          Store, Open (migrations under pg_advisory_lock), Close,
//	                  and the helpers every file uses: querier, scanner,
//	                  millis, fromMillis, msDuration, isUniqueViolation,
//	                  nullString, nullBytes
//	migrations/       0001_init.sql (the whole schema), the later ones
//	                  numbered on, and the embed
//	jobs.go           Job, Jobs, Retry, Cancel, SaveSettings, EndRun; the
//	                  helpers counts (requests per status), scanJob,
//	                  jobColumns, deref, inActiveJob
//	import.go         Import (COPY FROM), fingerprints, duplicates, lines
//	                  kept invalid
//	lease.go          many runners, one job (jobs.Runners): Lock, Heartbeat,
//	                  Unlock, LiveRunners, the leases a store's runs hold,
//	                  and heldLive (the SQL test of a request a live run
//	                  holds)
//	requests.go       Claim, Waiting, Recover, ClearWaits, CancelLeftovers
//	record.go         Record: which outcomes apply
//	record_rows.go    Record: the attempts and results it inserts
//	runstate.go       SaveRunState, RunState, ClearRunState
//	batches.go        the ProviderBatches methods, and inOpenBatch (the SQL
//	                  test of a request in an open provider batch)
//	limits.go         the limits a job's runs share (jobs.SharedLimits):
//	                  JoinLimits, LeaveLimits, TakeRate, Pause, ReadLimits,
//	                  Reserve, Settle, on the job's row of job_limits
//	copy.go, copy_load.go  jobs.JobCopier: DumpJob, LoadJob
//	stats.go          Stats                               ┐
//	summary.go        BeginSummary, Summary               │
//	models.go         Models, OpenModels, usage per model │ the reading
//	records.go        Records, RecordsWith                │ side
//	report.go         Report                              │
//	cache.go          NewCachePass                        │
//	throughput.go     throughput windows                  │
//	invalid.go        InvalidLines                        ┘
//
// The schema is store/sqlite's, column for column, so that the two engines'
// SQL maps one to one: times are unix milliseconds in bigint columns (0 or
// NULL for none), usage_known and cached are smallint 0/1, bodies and raw
// answers are bytea (kept byte for byte), and text compares byte by byte
// (COLLATE "C", as SQLite's BINARY) whatever the database's locale. What differs from SQLite when
// porting a query: placeholders are $1, $2, …; sum() of a bigint column is
// numeric (cast it, sum(x)::bigint, to scan into an int64); a Go bool is no
// smallint (pass 0 or 1); != is <>; a NULL column scans into a pointer.
package postgres
