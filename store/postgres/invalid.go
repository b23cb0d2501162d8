package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

// InvalidLines returns the messages ("FILE:LINE: reason") of the first
// limit requests of the job that were kept invalid at import
// (--skip-invalid), in line order, and how many there are in all. A
// negative limit means all of them, as SQLite's LIMIT -1 does
// (PostgreSQL refuses a negative LIMIT; NULL is none).
func (s *Store) InvalidLines(ctx context.Context, jobID int64, limit int) ([]string, int, error) {
	const where = ` FROM requests WHERE job_id = $1 AND status = 'failed' AND error_class = $2`
	class := string(jobs.ClassInvalidInput)
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*)`+where, jobID, class).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("invalid lines: %w", err)
	}
	var lim *int
	if limit >= 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, `SELECT error_message`+where+` ORDER BY id LIMIT $3`, jobID, class, lim)
	if err != nil {
		return nil, 0, fmt.Errorf("invalid lines: %w", err)
	}
	msgs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, 0, fmt.Errorf("invalid lines: %w", err)
	}
	return msgs, total, nil
}
