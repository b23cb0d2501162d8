package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/llmbatch/llmbatch/jobs"
)

// Record applies outcomes in one transaction (the group commit). Each
// applies only while its request is still running, so a result can never be
// recorded twice, whatever runs and restarts came between. The requests
// are updated one by one (each update says whether it applied); the
// attempts and results of those that applied are inserted a few
// statements of many rows each, which costs SQLite and cgo far less than a
// statement per row.
func (s *Store) Record(ctx context.Context, outcomes []jobs.Outcome) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	defer tx.Rollback()
	update, err := tx.PrepareContext(ctx, `UPDATE requests SET status = ?, attempts = attempts + ?,
		not_before = ?, error_class = ?, error_status_code = ?, error_message = ?, error_body = ?
		WHERE id = ? AND status = 'running'`)
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	defer update.Close()
	var attempts, results []*jobs.Outcome
	for i := range outcomes {
		o := &outcomes[i]
		applied, err := applyOutcome(ctx, update, o)
		if err != nil {
			return fmt.Errorf("record request %d: %w", o.Request.ID, err)
		}
		if !applied {
			continue // no longer running: another run or a cancel got there first
		}
		if o.Attempt != nil {
			attempts = append(attempts, o)
		}
		if o.Next == jobs.StatusSucceeded {
			results = append(results, o)
		}
	}
	if err := execRows(ctx, tx, attemptInsert, len(attempts), func(args []any, i int) []any {
		o := attempts[i]
		a := o.Attempt
		return append(args, o.Request.JobID, o.Request.ID, a.Number, millis(a.StartedAt),
			a.Duration.Milliseconds(), a.StatusCode, nullString(string(a.Class)), nullString(a.Message))
	}); err != nil {
		return fmt.Errorf("record outcomes: attempts: %w", err)
	}
	if err := execRows(ctx, tx, resultInsert, len(results), func(args []any, i int) []any {
		return appendResult(args, &results[i].Request, results[i].Result)
	}); err != nil {
		return fmt.Errorf("record outcomes: results: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record outcomes: commit: %w", err)
	}
	return nil
}

// applyOutcome moves the outcome's request from running to its next
// status; it reports false when the request was no longer running.
func applyOutcome(ctx context.Context, update *sql.Stmt, o *jobs.Outcome) (bool, error) {
	if err := jobs.CheckTransition(jobs.StatusRunning, o.Next); err != nil {
		return false, err
	}
	if o.Next == jobs.StatusSucceeded && o.Result == nil {
		return false, errors.New("succeeded without a result") // a succeeded request has exactly one
	}
	counted := 0
	if o.CountAttempt {
		counted = 1
	}
	var class, msg, code, body any
	if f := o.Failure; f != nil {
		class, code, msg, body = string(f.Class), f.StatusCode, f.Message, nullBytes(f.Body)
	}
	res, err := update.ExecContext(ctx, string(o.Next), counted, millis(o.NotBefore), class, code, msg, body, o.Request.ID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// attemptInsert and resultInsert are the multi-row inserts Record makes;
// markRunning is the claim's update.
var (
	attemptInsert = rowsStmt{head: `INSERT INTO attempts (job_id, request_id, number, started_at,
		duration_ms, status_code, error_class, message) VALUES `, cols: 8}
	resultInsert = rowsStmt{head: `INSERT INTO results (request_id, job_id, status_code,
		response_id, provider_request_id, model, raw, content, reasoning_content, finish_reason,
		usage_known, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, total_tokens,
		latency_ms, ttft_ms, created_at) VALUES `, cols: 19}
	markRunning = rowsStmt{head: `UPDATE requests SET status = 'running' WHERE status = 'pending' AND id IN (`,
		cols: 1, tail: `)`}
)

func appendResult(args []any, r *jobs.Request, res *jobs.Result) []any {
	u := res.Usage
	var ttft any
	if res.TTFT > 0 {
		ttft = res.TTFT.Milliseconds()
	}
	return append(args, r.ID, r.JobID, res.StatusCode, res.ResponseID, res.ProviderRequestID,
		res.Model, []byte(res.Raw), res.Content, res.ReasoningContent, res.FinishReason,
		u.Known, u.PromptTokens, u.CompletionTokens, u.ReasoningTokens, u.CachedTokens, u.TotalTokens,
		res.Latency.Milliseconds(), ttft, millis(res.CreatedAt))
}

// rowsStmt is a statement over a list of rows of cols values each, for
// any number of rows: head, "(?, …), …", tail.
type rowsStmt struct {
	head, tail string
	cols       int
}

// maxRowsPerInsert bounds the rows of one statement: 64 results are
// 1,216 parameters, far below SQLite's limit of 32,766.
const maxRowsPerInsert = 64

// execRows runs the statement over n rows, whose values add appends
// (row i), in statements of a power of two of rows each (64 at most), so
// that a connection's statement cache holds a few shapes only.
func execRows(ctx context.Context, tx *sql.Tx, ins rowsStmt, n int, add func(args []any, i int) []any) error {
	args := make([]any, 0, min(n, maxRowsPerInsert)*ins.cols)
	for done := 0; done < n; {
		k := maxRowsPerInsert
		for k > n-done {
			k /= 2
		}
		args = args[:0]
		for i := done; i < done+k; i++ {
			args = add(args, i)
		}
		if _, err := tx.ExecContext(ctx, ins.sql(k), args...); err != nil {
			return err
		}
		done += k
	}
	return nil
}

// rowsSQL caches the text of each rowsStmt for each row count.
var rowsSQL sync.Map // rowsKey → string

type rowsKey struct {
	head string
	rows int
}

// sql is the statement over rows rows.
func (ins rowsStmt) sql(rows int) string {
	key := rowsKey{ins.head, rows}
	if q, ok := rowsSQL.Load(key); ok {
		return q.(string)
	}
	q := ins.head + valuesList(ins.cols, rows) + ins.tail
	rowsSQL.Store(key, q)
	return q
}

// valuesList is "(?, …), …": rows tuples of cols placeholders.
func valuesList(cols, rows int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}
