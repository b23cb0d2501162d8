-- Provider batches: the input files of a job's requests sent through a
-- provider's Batch API (jobs.ProviderBatch). A row is written, and its
-- requests marked as its own, before the file is uploaded; the provider's
-- ids are stored as soon as they are known, so that a run killed at any
-- point finds the file or the batch again and never pays for a line twice.
--
-- key names the batch at the provider (the file's name, the batch's
-- metadata). The provider's ids are '' until known. total, completed and
-- failed are the provider's request_counts; left_count is how many of its
-- requests went back to pending when it was collected.
CREATE TABLE provider_batches (
    id              INTEGER PRIMARY KEY,
    job_id          INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key             TEXT    NOT NULL UNIQUE,
    endpoint        TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    requests        INTEGER NOT NULL DEFAULT 0,
    bytes           INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL DEFAULT 'new'
                    CHECK (state IN ('new', 'uploaded', 'submitted', 'ended', 'collected')),
    input_file_id   TEXT    NOT NULL DEFAULT '',
    batch_id        TEXT    NOT NULL DEFAULT '',
    output_file_id  TEXT    NOT NULL DEFAULT '',
    error_file_id   TEXT    NOT NULL DEFAULT '',
    provider_status TEXT    NOT NULL DEFAULT '',
    total           INTEGER NOT NULL DEFAULT 0,
    completed       INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    message         TEXT    NOT NULL DEFAULT '',
    left_count      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL, -- unix milliseconds
    updated_at      INTEGER NOT NULL
);

CREATE INDEX provider_batches_job ON provider_batches (job_id, state);

-- The batch a request was last put in (NULL: never). A running request
-- whose batch is open (state not 'collected') belongs to that batch;
-- one whose batch is collected went back to pending and is an ordinary
-- request again. The batch an attempt or a result came from (NULL:
-- online), for the batch discount.
--
-- No REFERENCES: a provider batch is deleted only with its job, which
-- deletes every row that names it, and a foreign key would add a check to
-- every attempt and result the hot path inserts.
ALTER TABLE requests ADD COLUMN provider_batch INTEGER;
ALTER TABLE attempts ADD COLUMN provider_batch INTEGER;
ALTER TABLE results ADD COLUMN provider_batch INTEGER;

-- The requests of a batch by status, in id order: its running ones (what a
-- run sends, records and collects) and the count of those in open
-- batches. Partial, so that the claims and records of online requests,
-- whose provider_batch is NULL, never touch it.
CREATE INDEX requests_provider_batch ON requests (provider_batch, status) WHERE provider_batch IS NOT NULL;
