-- Jobs: one imported input file each. The lock columns keep a second live
-- run off the same job; a stale heartbeat lets a new run take over.
CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    source         TEXT    NOT NULL,
    fingerprint    TEXT    NOT NULL,
    default_model  TEXT    NOT NULL DEFAULT '',
    state          TEXT    NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cancelled')),
    created_at     INTEGER NOT NULL, -- unix milliseconds, like every time here
    total          INTEGER NOT NULL DEFAULT 0,
    lock_token     TEXT,
    lock_pid       INTEGER,
    lock_host      TEXT,
    lock_heartbeat INTEGER
);

-- Requests: one line of input each, in input order (id follows line).
CREATE TABLE requests (
    id                INTEGER PRIMARY KEY,
    job_id            INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    line              INTEGER NOT NULL,
    custom_id         TEXT    NOT NULL,
    endpoint          TEXT    NOT NULL CHECK (endpoint IN ('/chat/completions', '/completions')),
    model             TEXT    NOT NULL,
    body              BLOB    NOT NULL,
    metadata          BLOB,
    status            TEXT    NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    not_before        INTEGER NOT NULL DEFAULT 0,
    error_class       TEXT,
    error_status_code INTEGER,
    error_message     TEXT,
    error_body        BLOB,
    UNIQUE (job_id, custom_id)
);

-- The claim query walks pending requests whose not-before time has passed.
CREATE INDEX requests_claim ON requests (job_id, status, not_before, id);

-- Attempts: one row per HTTP attempt, for statistics and reports.
CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    request_id  INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0,
    error_class TEXT,
    message     TEXT
);

CREATE INDEX attempts_job ON attempts (job_id, started_at);

-- Results: at most one per request, enforced by the primary key.
CREATE TABLE results (
    request_id          INTEGER PRIMARY KEY REFERENCES requests (id) ON DELETE CASCADE,
    job_id              INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    status_code         INTEGER NOT NULL,
    response_id         TEXT    NOT NULL DEFAULT '',
    provider_request_id TEXT    NOT NULL DEFAULT '',
    model               TEXT    NOT NULL DEFAULT '',
    raw                 BLOB    NOT NULL,
    content             TEXT    NOT NULL DEFAULT '',
    reasoning_content   TEXT    NOT NULL DEFAULT '',
    finish_reason       TEXT    NOT NULL DEFAULT '',
    usage_known         INTEGER NOT NULL DEFAULT 0,
    prompt_tokens       INTEGER NOT NULL DEFAULT 0,
    completion_tokens   INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens    INTEGER NOT NULL DEFAULT 0,
    cached_tokens       INTEGER NOT NULL DEFAULT 0,
    total_tokens        INTEGER NOT NULL DEFAULT 0,
    latency_ms          INTEGER NOT NULL,
    ttft_ms             INTEGER,
    created_at          INTEGER NOT NULL
);

CREATE INDEX results_job ON results (job_id);
