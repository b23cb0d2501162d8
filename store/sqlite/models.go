package sqlite

import (
	"context"
	"fmt"

	"github.com/llmbatch/llmbatch/jobs"
)

// modelUsage sums the job's results per requested model (the model the
// user priced), in name order, and counts those whose answer reported no
// usage; results copied from the cache cost nothing. The results a
// provider batch answered are counted and summed apart as well, in the
// same pass, for the batch discount.
// It reads the results through results_job, in request order: the planner
// would otherwise pick results_job_latency for "cached = 0" and visit a
// million rows in latency order, far slower than in storage order.
func (s *Store) modelUsage(ctx context.Context, q querier, jobID int64) ([]jobs.ModelUsage, error) {
	rows, err := q.QueryContext(ctx, `SELECT q.model, count(*), max(x.usage_known), count(*) - sum(x.usage_known), sum(x.prompt_tokens),
		sum(x.completion_tokens), sum(x.reasoning_tokens), sum(x.cached_tokens), sum(x.total_tokens),
		count(x.provider_batch), `+batchSums+`
		FROM results x INDEXED BY results_job JOIN requests q ON q.id = x.request_id
		WHERE x.job_id = ? AND x.cached = 0 GROUP BY q.model ORDER BY q.model`, jobID)
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
	return list, rows.Err()
}

// batchSums are the usage columns of modelUsage summed over the results
// of provider batches only.
const batchSums = `max(CASE WHEN x.provider_batch IS NULL THEN 0 ELSE x.usage_known END),
		sum(CASE WHEN x.provider_batch IS NULL THEN 0 ELSE x.prompt_tokens END),
		sum(CASE WHEN x.provider_batch IS NULL THEN 0 ELSE x.completion_tokens END),
		sum(CASE WHEN x.provider_batch IS NULL THEN 0 ELSE x.reasoning_tokens END),
		sum(CASE WHEN x.provider_batch IS NULL THEN 0 ELSE x.cached_tokens END),
		sum(CASE WHEN x.provider_batch IS NULL THEN 0 ELSE x.total_tokens END)`

// totalUsage sums the usage of every model, and the results without
// usage: the job's, read in the same pass as the split, since each pass
// over a million results is slow (BENCHMARKS.md).
func totalUsage(models []jobs.ModelUsage) (t jobs.Usage, withoutUsage int) {
	for _, m := range models {
		withoutUsage += m.WithoutUsage
		u := m.Usage
		t.Known = t.Known || u.Known
		t.PromptTokens += u.PromptTokens
		t.CompletionTokens += u.CompletionTokens
		t.ReasoningTokens += u.ReasoningTokens
		t.CachedTokens += u.CachedTokens
		t.TotalTokens += u.TotalTokens
	}
	return t, withoutUsage
}
