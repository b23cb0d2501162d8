-- The whole schema of the PostgreSQL engine: what store/sqlite's
-- migrations 0001-0007 build, table for table and column for column, with
-- PostgreSQL's types. Times stay unix milliseconds in bigint columns (0 or
-- NULL: none), as in SQLite, so that the two engines read and write the
-- same values; flags that SQLite keeps as 0/1 integers (usage_known,
-- cached) stay smallint 0/1 for the same reason. Bodies and raw answers are
-- bytea: they are kept byte for byte, which jsonb would not do (it
-- reorders keys and respells numbers). Text columns compare byte by byte
-- (COLLATE "C"), as SQLite's do, whatever the database's collation: names
-- and models sort the same on both engines, and the keys of the indexes an
-- import fills (custom_id, cache_key, status) compare without the locale.

-- Jobs: one imported input file each. The lock columns keep a second live
-- run off the same job; a stale heartbeat lets a new run take over.
--
-- settings: a JSON object (jobs.Settings), the way the job is sent; never
-- the API key. last_end: why the last run ended (jobs.RunEnd), '' when no
-- run has ended.
CREATE TABLE jobs (
    id               bigserial        PRIMARY KEY,
    name             text COLLATE "C" NOT NULL UNIQUE,
    source           text COLLATE "C" NOT NULL,
    fingerprint      text COLLATE "C" NOT NULL,
    default_model    text COLLATE "C" NOT NULL DEFAULT '',
    state            text COLLATE "C" NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cancelled')),
    created_at       bigint           NOT NULL,
    total            bigint           NOT NULL DEFAULT 0,
    lock_token       text COLLATE "C",
    lock_pid         bigint,
    lock_host        text COLLATE "C",
    lock_heartbeat   bigint,
    settings         text COLLATE "C" NOT NULL DEFAULT '{}',
    last_end         text COLLATE "C" NOT NULL DEFAULT '',
    last_end_at      bigint           NOT NULL DEFAULT 0,
    last_end_message text COLLATE "C" NOT NULL DEFAULT ''
);

-- Requests: one line of input each, in input order (id follows line).
--
-- cache_key: jobs.CacheKey, NULL when never answered from the cache.
-- provider_batch: the provider batch the request was last put in (NULL:
-- never); a running request whose batch is not collected belongs to it.
-- lease_owner and lease_until: the runner that claimed a running request
-- and until when its claim holds (unix milliseconds), for many runners on
-- one job (issue 15); NULL while unused.
--
-- job_id has no REFERENCES, unlike SQLite's: an import stores a job's
-- requests in the transaction that stores the job, and nothing deletes a
-- job, while a foreign key costs every row of an import a lookup and a
-- lock of the job's row (BenchmarkImport measures what that adds).
CREATE TABLE requests (
    id                bigserial        PRIMARY KEY,
    job_id            bigint           NOT NULL,
    line              bigint           NOT NULL,
    custom_id         text COLLATE "C" NOT NULL,
    endpoint          text COLLATE "C" NOT NULL
                      CHECK (endpoint IN ('/chat/completions', '/completions', '/embeddings')),
    model             text COLLATE "C" NOT NULL,
    body              bytea            NOT NULL,
    metadata          bytea,
    status            text COLLATE "C" NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts          integer          NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    not_before        bigint           NOT NULL DEFAULT 0,
    error_class       text COLLATE "C",
    error_status_code integer,
    error_message     text COLLATE "C",
    error_body        bytea,
    cache_key         text COLLATE "C",
    error_request_id  text COLLATE "C",
    provider_batch    bigint,
    lease_owner       text COLLATE "C",
    lease_until       bigint,
    UNIQUE (job_id, custom_id)
);

-- Counts by status, and the claim: a job's pending requests in id order.
CREATE INDEX requests_claim ON requests (job_id, status, not_before, id);
-- The cache looks up requests by key.
CREATE INDEX requests_cache_key ON requests (cache_key) WHERE cache_key IS NOT NULL;
-- The requests of a provider batch; partial, so that online requests never
-- touch it.
CREATE INDEX requests_provider_batch ON requests (provider_batch, status) WHERE provider_batch IS NOT NULL;

-- Attempts: one row per HTTP attempt, for statistics and reports.
-- provider_batch: the batch that made it, NULL online.
--
-- job_id of attempts and results has no REFERENCES either: a foreign key
-- to jobs would take a lock on the job's one row for every attempt and
-- result that every runner of the job records. They refer to their
-- request, whose row the recording transaction holds already.
CREATE TABLE attempts (
    id             bigserial        PRIMARY KEY,
    job_id         bigint           NOT NULL,
    request_id     bigint           NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    number         integer          NOT NULL,
    started_at     bigint           NOT NULL,
    duration_ms    bigint           NOT NULL,
    status_code    integer          NOT NULL DEFAULT 0,
    error_class    text COLLATE "C",
    message        text COLLATE "C",
    provider_batch bigint
);

CREATE INDEX attempts_job ON attempts (job_id, started_at);
-- Throughput is read by the time each attempt ended.
CREATE INDEX attempts_job_ended ON attempts (job_id, (started_at + duration_ms));

-- Results: at most one per request, enforced by the primary key. cached:
-- 1 when copied from an earlier identical request's result instead of
-- asked of the API. provider_batch: the batch that answered, NULL online.
CREATE TABLE results (
    request_id          bigint           PRIMARY KEY REFERENCES requests (id) ON DELETE CASCADE,
    job_id              bigint           NOT NULL,
    status_code         integer          NOT NULL,
    response_id         text COLLATE "C" NOT NULL DEFAULT '',
    provider_request_id text COLLATE "C" NOT NULL DEFAULT '',
    model               text COLLATE "C" NOT NULL DEFAULT '',
    raw                 bytea            NOT NULL,
    content             text COLLATE "C" NOT NULL DEFAULT '',
    reasoning_content   text COLLATE "C" NOT NULL DEFAULT '',
    finish_reason       text COLLATE "C" NOT NULL DEFAULT '',
    usage_known         smallint         NOT NULL DEFAULT 0 CHECK (usage_known IN (0, 1)),
    prompt_tokens       bigint           NOT NULL DEFAULT 0,
    completion_tokens   bigint           NOT NULL DEFAULT 0,
    reasoning_tokens    bigint           NOT NULL DEFAULT 0,
    cached_tokens       bigint           NOT NULL DEFAULT 0,
    total_tokens        bigint           NOT NULL DEFAULT 0,
    latency_ms          bigint           NOT NULL,
    ttft_ms             bigint,
    created_at          bigint           NOT NULL,
    cached              smallint         NOT NULL DEFAULT 0 CHECK (cached IN (0, 1)),
    provider_batch      bigint
);

CREATE INDEX results_job ON results (job_id);
-- Latency and time-to-first-token percentiles by nearest rank.
CREATE INDEX results_job_latency ON results (job_id, cached, latency_ms);
CREATE INDEX results_job_ttft ON results (job_id, cached, ttft_ms) WHERE ttft_ms IS NOT NULL;

-- Run state: how the live run of a job is pacing itself, saved about every
-- second for status. A run that ends deletes its row; an old updated_at
-- belongs to a run that died. 0 in a limit: none.
CREATE TABLE run_state (
    job_id          bigint           PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    concurrency     integer          NOT NULL,
    max_concurrency integer          NOT NULL,
    in_flight       integer          NOT NULL DEFAULT 0,
    rpm             integer          NOT NULL DEFAULT 0,
    tpm             integer          NOT NULL DEFAULT 0,
    adaptive_rpm    integer          NOT NULL DEFAULT 0,
    paused_until    bigint           NOT NULL DEFAULT 0,
    updated_at      bigint           NOT NULL,
    pause_reason    text COLLATE "C" NOT NULL DEFAULT '',
    paused_since    bigint           NOT NULL DEFAULT 0,
    next_probe      bigint           NOT NULL DEFAULT 0
);

-- Provider batches: the input files of a job's requests sent through a
-- provider's Batch API (jobs.ProviderBatch); see store/sqlite's 0007 for
-- the life of a row. The provider's ids are '' until known.
CREATE TABLE provider_batches (
    id              bigserial        PRIMARY KEY,
    job_id          bigint           NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key             text COLLATE "C" NOT NULL UNIQUE,
    endpoint        text COLLATE "C" NOT NULL,
    model           text COLLATE "C" NOT NULL,
    requests        integer          NOT NULL DEFAULT 0,
    bytes           bigint           NOT NULL DEFAULT 0,
    state           text COLLATE "C" NOT NULL DEFAULT 'new'
                                     CHECK (state IN ('new', 'uploaded', 'submitted', 'ended', 'collected')),
    input_file_id   text COLLATE "C" NOT NULL DEFAULT '',
    batch_id        text COLLATE "C" NOT NULL DEFAULT '',
    output_file_id  text COLLATE "C" NOT NULL DEFAULT '',
    error_file_id   text COLLATE "C" NOT NULL DEFAULT '',
    provider_status text COLLATE "C" NOT NULL DEFAULT '',
    total           integer          NOT NULL DEFAULT 0,
    completed       integer          NOT NULL DEFAULT 0,
    failed          integer          NOT NULL DEFAULT 0,
    message         text COLLATE "C" NOT NULL DEFAULT '',
    left_count      integer          NOT NULL DEFAULT 0,
    created_at      bigint           NOT NULL,
    updated_at      bigint           NOT NULL
);

CREATE INDEX provider_batches_job ON provider_batches (job_id, state);
