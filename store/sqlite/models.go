package sqlite

import (
	"context"
	"fmt"

	"github.com/llmbatch/llmbatch/jobs"
)

// modelUsage sums the job's results per requested model (the model the
// user priced), in name order, and counts those whose answer reported no
// usage; results copied from the cache cost nothing. The results of
// provider batches are counted and summed apart as well, for the batch
// discount, when the job has had any: grouping by batch or not makes the
// pass over every result cost more CPU, which online jobs need not pay.
// It reads the results in request (storage) order, through the range of
// the job's request ids, which an import gives in one run: the planner
// would otherwise pick results_job_latency for "cached = 0" and visit a
// million rows in latency order, far slower.
func (s *Store) modelUsage(ctx context.Context, q querier, jobID int64) ([]jobs.ModelUsage, error) {
	var batched bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM provider_batches WHERE job_id = ?)`,
		jobID).Scan(&batched); err != nil {
		return nil, fmt.Errorf("stats: usage by model: %w", err)
	}
	query := onlineUsageQuery
	if batched {
		query = batchUsageQuery
	}
	rows, err := q.QueryContext(ctx, query, jobID)
	if err != nil {
		return nil, fmt.Errorf("stats: usage by model: %w", err)
	}
	defer rows.Close()
	list := []jobs.ModelUsage{}
	for rows.Next() {
		var m jobs.ModelUsage
		var inBatch bool
		var known int
		u := &m.Usage
		if err := rows.Scan(&m.Model, &inBatch, &m.Results, &known, &m.WithoutUsage, &u.PromptTokens,
			&u.CompletionTokens, &u.ReasoningTokens, &u.CachedTokens, &u.TotalTokens); err != nil {
			return nil, fmt.Errorf("stats: usage by model: %w", err)
		}
		u.Known = known == 1
		if inBatch {
			m.BatchResults, m.BatchUsage = m.Results, m.Usage
		}
		list = addModelUsage(list, m)
	}
	return list, rows.Err()
}

// usageQuery sums the results of the job ?1 by model, and by what %s
// groups them besides (in that order). The bounds of the id range are read
// from results_job_latency, which holds every result's request id.
const usageQuery = `SELECT q.model, %s, count(*), max(x.usage_known), count(*) - sum(x.usage_known),
	sum(x.prompt_tokens), sum(x.completion_tokens), sum(x.reasoning_tokens), sum(x.cached_tokens), sum(x.total_tokens)
	FROM results x NOT INDEXED JOIN requests q ON q.id = x.request_id
	WHERE x.request_id BETWEEN (SELECT min(request_id) FROM results WHERE job_id = ?1)
	AND (SELECT max(request_id) FROM results WHERE job_id = ?1)
	AND x.job_id = ?1 AND x.cached = 0 GROUP BY %s ORDER BY %[2]s`

// onlineUsageQuery sums by model only, for a job that never had a provider
// batch; batchUsageQuery by model and whether a batch answered.
var (
	onlineUsageQuery = fmt.Sprintf(usageQuery, "0", "q.model")
	batchUsageQuery  = fmt.Sprintf(usageQuery, "x.provider_batch IS NOT NULL", "q.model, 2")
)

// addModelUsage appends m to list, or adds it to list's last entry when
// that is of the same model (its online part and its batches').
func addModelUsage(list []jobs.ModelUsage, m jobs.ModelUsage) []jobs.ModelUsage {
	if len(list) == 0 || list[len(list)-1].Model != m.Model {
		return append(list, m)
	}
	last := &list[len(list)-1]
	last.Results += m.Results
	last.Usage = last.Usage.Add(m.Usage)
	last.WithoutUsage += m.WithoutUsage
	last.BatchResults += m.BatchResults
	last.BatchUsage = last.BatchUsage.Add(m.BatchUsage)
	return list
}

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
