-- The limits that the runs sharing a job share (jobs.SharedLimits, issue
-- 15): one row per job, created by the first run that joins them. Every
-- operation is one statement on this row, so the row's lock orders the
-- runs' takes and reservations. Times are unix milliseconds by the
-- database's clock (llmbatch_now_ms), never a host's, so that hosts whose
-- clocks disagree share one rate and one pause.
--
-- req_* and tok_*: the token buckets of --rpm (requests) and --tpm
-- (tokens): the balance as of *_at, refilled at the rate of whoever takes.
-- A new row's buckets are full (at 0: long ago).
-- paused_until: the job's dispatch is paused until then (a 429's
-- Retry-After one run saw).
-- spent_*: what the job spent, as the runs with a budget settled it.
-- holds: what each live run holds reserved of the budget, by run:
-- {"run": {"t": tokens, "c": cost, "u": until}}; a hold lapses at u.
CREATE TABLE job_limits (
    job_id       bigint           PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    req_balance  double precision NOT NULL DEFAULT 0,
    req_at       bigint           NOT NULL DEFAULT 0,
    tok_balance  double precision NOT NULL DEFAULT 0,
    tok_at       bigint           NOT NULL DEFAULT 0,
    paused_until bigint           NOT NULL DEFAULT 0,
    spent_tokens bigint           NOT NULL DEFAULT 0,
    spent_cost   double precision NOT NULL DEFAULT 0,
    holds        jsonb            NOT NULL DEFAULT '{}'
);

-- llmbatch_now_ms is the time of the current statement: the same however
-- often a statement asks, and however long it waited for a lock.
CREATE FUNCTION llmbatch_now_ms() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT (extract(epoch FROM statement_timestamp()) * 1000)::bigint
$$;

-- llmbatch_refill is a bucket of balance as of at_ms, refilled to now_ms
-- at per_minute up to burst (a balance above burst stays); a rate of 0
-- leaves it as it is.
CREATE FUNCTION llmbatch_refill(balance double precision, at_ms bigint, now_ms bigint,
    per_minute double precision, burst double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN per_minute <= 0 OR balance >= burst THEN balance
        ELSE least(burst, balance + greatest(0, now_ms - at_ms) * per_minute / 60000.0) END
$$;

-- llmbatch_grant is what a take of want, worth taking from least up, gets
-- from a bucket holding refilled.
CREATE FUNCTION llmbatch_grant(refilled double precision, per_minute double precision,
    want double precision, least_ double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN per_minute > 0 AND want > 0 AND refilled >= least_ THEN least(want, refilled)
        ELSE 0 END
$$;

-- llmbatch_live_holds is holds without the holds that lapsed by now_ms.
CREATE FUNCTION llmbatch_live_holds(holds jsonb, now_ms bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb)
    FROM jsonb_each(holds) AS e(k, v) WHERE (v->>'u')::bigint > now_ms
$$;

-- llmbatch_held_tokens and llmbatch_held_cost sum holds.
CREATE FUNCTION llmbatch_held_tokens(holds jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(sum((v->>'t')::bigint), 0)::bigint FROM jsonb_each(holds) AS e(k, v)
$$;

CREATE FUNCTION llmbatch_held_cost(holds jsonb) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(sum((v->>'c')::double precision), 0) FROM jsonb_each(holds) AS e(k, v)
$$;

-- llmbatch_hold_add is holds with tokens and cost added to run's hold
-- (created if missing, never below zero) and the hold renewed until
-- until_ms. Every reservation holds tokens, so a hold of no tokens holds
-- no cost either: the rounding of many additions and subtractions of a
-- cost must not leave a run seeming to hold something for ever.
CREATE FUNCTION llmbatch_hold_add(holds jsonb, run text, tokens bigint,
    cost double precision, until_ms bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT holds || jsonb_build_object(run, jsonb_build_object(
        't', t, 'c', CASE WHEN t = 0 THEN 0 ELSE greatest(0, c) END, 'u', until_ms))
    FROM (SELECT greatest(0, coalesce((holds->run->>'t')::bigint, 0) + tokens) AS t,
        coalesce((holds->run->>'c')::double precision, 0) + cost AS c) AS n
$$;
