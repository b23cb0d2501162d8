package postgres

import (
	"context"
	"fmt"

	"github.com/llmbatch/llmbatch/jobs"
)

// OpenModels lists, in name order, the models the job's requests that are
// not yet final (pending or running) ask for.
func (s *Store) OpenModels(ctx context.Context, jobID int64) ([]string, error) {
	return s.models(ctx, jobID, `AND status IN ('pending', 'running')`)
}

// Models lists, in name order, the models the job's requests ask for.
func (s *Store) Models(ctx context.Context, jobID int64) ([]string, error) {
	return s.models(ctx, jobID, "")
}

// models orders by byte value (COLLATE "C"), as SQLite does, not by the
// database's collation, which would sort "a/b" and "a-b" by the rules of
// its language and differently on each server.
func (s *Store) models(ctx context.Context, jobID int64, cond string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT model FROM requests
		WHERE job_id = $1 `+cond+` GROUP BY model ORDER BY model COLLATE "C"`, jobID)
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	defer rows.Close()
	var models []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, fmt.Errorf("models: %w", err)
		}
		models = append(models, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	return models, nil
}

// modelUsage sums the job's results per requested model (the model the
// user priced), in name order, and counts those whose answer reported no
// usage; results copied from the cache cost nothing. The results a
// provider batch answered are counted and summed apart as well, in the
// same pass, for the batch discount. sum() of a bigint is numeric in
// PostgreSQL, hence the casts back.
func modelUsage(ctx context.Context, q querier, jobID int64) ([]jobs.ModelUsage, error) {
	rows, err := q.Query(ctx, `SELECT q.model, count(*), max(x.usage_known), count(*) - sum(x.usage_known),
		sum(x.prompt_tokens)::bigint, sum(x.completion_tokens)::bigint, sum(x.reasoning_tokens)::bigint,
		sum(x.cached_tokens)::bigint, sum(x.total_tokens)::bigint, count(x.provider_batch), `+batchSums+`
		FROM results x JOIN requests q ON q.id = x.request_id
		WHERE x.job_id = $1 AND x.cached = 0 GROUP BY q.model ORDER BY q.model COLLATE "C"`, jobID)
	if err != nil {
		return nil, fmt.Errorf("stats: usage by model: %w", err)
	}
	defer rows.Close()
	list := []jobs.ModelUsage{}
	for rows.Next() {
		var m jobs.ModelUsage
		var known, batchKnown int
		u, b := &m.Usage, &m.BatchUsage
		if err := rows.Scan(&m.Model, &m.Results, &known, &m.WithoutUsage, &u.PromptTokens, &u.CompletionTokens,
			&u.ReasoningTokens, &u.CachedTokens, &u.TotalTokens, &m.BatchResults, &batchKnown, &b.PromptTokens,
			&b.CompletionTokens, &b.ReasoningTokens, &b.CachedTokens, &b.TotalTokens); err != nil {
			return nil, fmt.Errorf("stats: usage by model: %w", err)
		}
		u.Known, b.Known = known == 1, batchKnown == 1
		list = append(list, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: usage by model: %w", err)
	}
	return list, nil
}

// batchSums are the usage columns of modelUsage summed over the results
// of provider batches only.
const batchSums = `max(CASE WHEN x.provider_batch IS NULL THEN 0 ELSE x.usage_known END),
		sum(CASE WHEN x.provider_batch IS NULL THEN 0 ELSE x.prompt_tokens END)::bigint,
		sum(CASE WHEN x.provider_batch IS NULL THEN 0 ELSE x.completion_tokens END)::bigint,
		sum(CASE WHEN x.provider_batch IS NULL THEN 0 ELSE x.reasoning_tokens END)::bigint,
		sum(CASE WHEN x.provider_batch IS NULL THEN 0 ELSE x.cached_tokens END)::bigint,
		sum(CASE WHEN x.provider_batch IS NULL THEN 0 ELSE x.total_tokens END)::bigint`

// totalUsage sums the usage of every model, and the results without
// usage: the job's, read in the same pass as the split.
func totalUsage(models []jobs.ModelUsage) (t jobs.Usage, withoutUsage int) {
	for _, m := range models {
		withoutUsage += m.WithoutUsage
		t = t.Add(m.Usage)
	}
	return t, withoutUsage
}
