-- What a job remembers of how it is sent, and how its last run ended.
--
-- settings: a JSON object (jobs.Settings) stored when the job is created:
-- the base URL its requests go to, the flags that shaped its requests
-- (model, stream, template, system, params, samples, id field) and the
-- prices given to run. The API key is never part of it.
ALTER TABLE jobs ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

-- last_end: why the last run ended (jobs.RunEnd: finished, budget, fatal,
-- unreachable, interrupted, cancelled, error), written as it ends; '' when
-- no run has ended. A lock still held by a dead run with no end written
-- means that run was killed.
ALTER TABLE jobs ADD COLUMN last_end TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN last_end_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN last_end_message TEXT NOT NULL DEFAULT '';

-- The provider's request id of a failure with an HTTP answer (its
-- x-request-id header, else the error body's id), for the OpenAI Batch
-- error line.
ALTER TABLE requests ADD COLUMN error_request_id TEXT;

-- Why a live run has stopped dispatching as a whole (an outage), since
-- when, and when it probes next; '' and 0 when it is not paused that way.
ALTER TABLE run_state ADD COLUMN pause_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE run_state ADD COLUMN paused_since INTEGER NOT NULL DEFAULT 0;
ALTER TABLE run_state ADD COLUMN next_probe INTEGER NOT NULL DEFAULT 0;
