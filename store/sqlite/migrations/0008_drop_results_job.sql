-- results_job (job_id) is dropped: results_job_latency (job_id, cached,
-- latency_ms) serves every lookup of a job's results by its leading
-- column (counts, quantiles, the slowest requests, a job's deletion), and
-- each result the hot path records no longer writes a third index entry.
-- The usage by model, which read a job's results through results_job in
-- request order, reads the range of the job's request ids from the
-- table itself (models.go), in the same order.
DROP INDEX results_job;
