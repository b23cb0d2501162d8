-- migrate: foreign_keys off
--
-- Embeddings: the endpoint CHECK of requests lets '/embeddings' in.
--
-- SQLite cannot ALTER a CHECK constraint. Its manual gives two procedures
-- ("Making Other Kinds Of Table Schema Changes",
-- https://www.sqlite.org/lang_altertable.html): the 12-step rebuild, which
-- this is, and, for loosening a CHECK, editing the stored CREATE TABLE text
-- with PRAGMA writable_schema. The edit would be quicker on a large
-- database (it copies nothing), but it rewrites sqlite_schema by hand: a
-- text that does not hold the CHECK exactly as 0001 spelled it is edited
-- silently wrong or not at all, a mistake there corrupts the database (the
-- manual's own warning), it needs PRAGMA schema_version set to a number
-- read at run time, which a .sql file cannot spell, and builds that set
-- SQLITE_DBCONFIG_DEFENSIVE refuse it. The rebuild is ordinary SQL in this
-- migration's transaction: anything that fails rolls it back whole, and
-- the table it leaves is exactly the one declared below.
--
-- Foreign keys must be off while it runs: with them on, DROP TABLE
-- requests would delete, through ON DELETE CASCADE, every attempt and
-- result of the old table. PRAGMA foreign_keys does nothing inside a
-- transaction, so the first line above asks the migration runner to turn
-- them off around this file, runs PRAGMA foreign_key_check before the
-- commit and turns them on again after it (steps 1, 2 and 10-12). The new
-- table takes the old one's name after the old one is dropped (steps 4-7),
-- so the REFERENCES requests of attempts and results point at it without
-- being rewritten. There are no views or triggers on requests (step 9);
-- its indexes are made again (step 8). Every column keeps its place,
-- cache_key and error_request_id last as 0003 and 0005 added them.
CREATE TABLE requests_new (
    id                INTEGER PRIMARY KEY,
    job_id            INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    line              INTEGER NOT NULL,
    custom_id         TEXT    NOT NULL,
    endpoint          TEXT    NOT NULL
                      CHECK (endpoint IN ('/chat/completions', '/completions', '/embeddings')),
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
    cache_key         TEXT,
    error_request_id  TEXT,
    UNIQUE (job_id, custom_id)
);

INSERT INTO requests_new (id, job_id, line, custom_id, endpoint, model, body, metadata, status, attempts,
                          not_before, error_class, error_status_code, error_message, error_body, cache_key,
                          error_request_id)
SELECT id, job_id, line, custom_id, endpoint, model, body, metadata, status, attempts,
       not_before, error_class, error_status_code, error_message, error_body, cache_key,
       error_request_id
FROM requests;

DROP TABLE requests;
ALTER TABLE requests_new RENAME TO requests;

-- The indexes of 0001 and 0003, as they were.
CREATE INDEX requests_claim ON requests (job_id, status, not_before, id);
CREATE INDEX requests_cache_key ON requests (cache_key) WHERE cache_key IS NOT NULL;
