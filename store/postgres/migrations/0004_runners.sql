-- The runs working each job (jobs.Runners, issue 15): on PostgreSQL any
-- number of `llmbatch run` processes, on any hosts, work one job at once.
-- Each has a row here from Lock to Unlock, renewed by its heartbeat; a row
-- whose until_ms has passed belongs to a run that is gone (killed, its
-- host lost, its network cut, stopped), and the requests it leased
-- (requests.lease_owner = token) go back to pending. Times are unix
-- milliseconds by the database's clock (llmbatch_now_ms), never a host's,
-- so that hosts whose clocks disagree agree on whose lease has expired.
--
-- lease_ms: the run's lease period (run --lease), by which its heartbeat
-- extends this row and its leases. started_at and heartbeat: for status.
CREATE TABLE job_runners (
    job_id     bigint           NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    token      text COLLATE "C" NOT NULL,
    pid        bigint           NOT NULL,
    host       text COLLATE "C" NOT NULL,
    lease_ms   bigint           NOT NULL CHECK (lease_ms > 0),
    started_at bigint           NOT NULL,
    heartbeat  bigint           NOT NULL,
    until_ms   bigint           NOT NULL,
    PRIMARY KEY (job_id, token)
);
