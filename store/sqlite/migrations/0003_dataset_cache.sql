-- The dedup cache across jobs: each request keeps the key of what it asks
-- for (jobs.CacheKey: the canonical body, endpoint and sample index), and a
-- result copied from an earlier request with the same key, instead of
-- asked of the API, is marked cached. NULL: never answered from the cache.
ALTER TABLE requests ADD COLUMN cache_key TEXT;
ALTER TABLE results ADD COLUMN cached INTEGER NOT NULL DEFAULT 0 CHECK (cached IN (0, 1));

-- AnswerFromCache looks up succeeded requests by key. status is left out
-- of the index so that claiming and recording do not have to update it.
CREATE INDEX requests_cache_key ON requests (cache_key) WHERE cache_key IS NOT NULL;
