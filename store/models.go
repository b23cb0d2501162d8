package store

import (
	"context"
	"fmt"

	"github.com/llmbatch/llmbatch/jobs"
)

// modelUsage sums the job's results per requested model (the model the
// user priced), in name order; results copied from the cache cost nothing.
func (s *Store) modelUsage(ctx context.Context, q querier, jobID int64) ([]jobs.ModelUsage, error) {
	rows, err := q.QueryContext(ctx, `SELECT q.model, count(*), max(x.usage_known), sum(x.prompt_tokens),
		sum(x.completion_tokens), sum(x.reasoning_tokens), sum(x.cached_tokens), sum(x.total_tokens)
		FROM results x JOIN requests q ON q.id = x.request_id
		WHERE x.job_id = ? AND x.cached = 0 GROUP BY q.model ORDER BY q.model`, jobID)
	if err != nil {
		return nil, fmt.Errorf("stats: usage by model: %w", err)
	}
	defer rows.Close()
	list := []jobs.ModelUsage{}
	for rows.Next() {
		var m jobs.ModelUsage
		var known int
		u := &m.Usage
		if err := rows.Scan(&m.Model, &m.Results, &known, &u.PromptTokens, &u.CompletionTokens,
			&u.ReasoningTokens, &u.CachedTokens, &u.TotalTokens); err != nil {
			return nil, fmt.Errorf("stats: usage by model: %w", err)
		}
		u.Known = known == 1
		list = append(list, m)
	}
	return list, rows.Err()
}
