-- Run state: how the live run of a job is pacing itself (effective
-- concurrency, limits, a pause), saved by the run about every second so
-- that status can show it. A run that ends deletes its row; a row whose
-- updated_at is old belongs to a run that died.
CREATE TABLE run_state (
    job_id          INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    concurrency     INTEGER NOT NULL,
    max_concurrency INTEGER NOT NULL,
    in_flight       INTEGER NOT NULL DEFAULT 0,
    rpm             INTEGER NOT NULL DEFAULT 0, -- 0: no limit
    tpm             INTEGER NOT NULL DEFAULT 0,
    adaptive_rpm    INTEGER NOT NULL DEFAULT 0, -- 0: none learned yet
    paused_until    INTEGER NOT NULL DEFAULT 0, -- unix milliseconds; 0: not paused
    updated_at      INTEGER NOT NULL
);
