-- Indexes that keep `status` fast on a job of a million requests.
--
-- Throughput is read by the time each attempt ended: the requests completed
-- in the last minute and five minutes, and the end of the last attempt.
CREATE INDEX attempts_job_ended ON attempts (job_id, started_at + duration_ms);

-- Latency and time-to-first-token percentiles are read by nearest rank
-- (ORDER BY … LIMIT 1 OFFSET rank): walking an index instead of sorting
-- every result of the job each time. Only streamed results have a time to
-- first token, so that index holds only them.
CREATE INDEX results_job_latency ON results (job_id, cached, latency_ms);
CREATE INDEX results_job_ttft ON results (job_id, cached, ttft_ms) WHERE ttft_ms IS NOT NULL;
