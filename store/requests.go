package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// Claim atomically moves up to n due pending requests of an active job to
// running and returns them in id (input) order.
//
// The claim is committed without an fsync (synchronous=NORMAL for this one
// transaction): a claim lost to a power cut leaves its requests pending,
// which is where Recover would put them anyway, and the fsync of the next
// Record makes it durable with everything written before it. Outcomes
// (results, failures, attempts) are still committed with synchronous=FULL.
func (s *Store) Claim(ctx context.Context, jobID int64, n int, now time.Time) ([]jobs.Request, error) {
	if n <= 0 { // LIMIT -1 would mean no limit at all
		return nil, nil
	}
	var out []jobs.Request
	err := s.withoutSync(ctx, func(conn *sql.Conn) error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if out, err = claimTx(ctx, tx, jobID, n, now); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	return out, nil
}

// claimTx selects the due requests and marks them running one by one: the
// single UPDATE … WHERE id IN (SELECT …) RETURNING statement builds four
// temporary tables per call, which costs more than the updates.
func claimTx(ctx context.Context, tx *sql.Tx, jobID int64, n int, now time.Time) ([]jobs.Request, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, line, custom_id, endpoint, model, body, metadata, attempts, not_before
		FROM requests WHERE job_id = ? AND status = 'pending' AND not_before <= ?
		AND EXISTS (SELECT 1 FROM jobs WHERE id = ? AND state = 'active')
		ORDER BY not_before, id LIMIT ?`, jobID, millis(now), jobID, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]jobs.Request, 0, n)
	for rows.Next() {
		r := jobs.Request{JobID: jobID, Status: jobs.StatusRunning}
		var endpoint string
		var notBefore int64
		if err := rows.Scan(&r.ID, &r.Line, &r.CustomID, &endpoint, &r.Model, &r.Body, (*[]byte)(&r.Metadata),
			&r.Attempts, &notBefore); err != nil {
			return nil, err
		}
		r.Endpoint = jobs.Endpoint(endpoint)
		r.NotBefore = fromMillis(notBefore)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	for _, r := range out {
		if _, err := tx.ExecContext(ctx, `UPDATE requests SET status = 'running' WHERE id = ? AND status = 'pending'`, r.ID); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// withoutSync runs fn on the writer connection with synchronous=NORMAL,
// and restores synchronous=FULL after it. A connection that cannot be
// restored is discarded, so that no later transaction commits without an
// fsync by mistake.
func (s *Store) withoutSync(ctx context.Context, fn func(*sql.Conn) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return err
	}
	ferr := fn(conn)
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = FULL`); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return errors.Join(ferr, err)
	}
	return ferr
}

// Record applies outcomes in one transaction (the group commit). Each
// applies only while its request is still running, so a result can never be
// recorded twice, whatever runs and restarts came between.
func (s *Store) Record(ctx context.Context, outcomes []jobs.Outcome) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	defer tx.Rollback()
	st, err := prepareRecord(ctx, tx)
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	defer st.close()
	for i := range outcomes {
		if err := st.record(ctx, &outcomes[i]); err != nil {
			return fmt.Errorf("record request %d: %w", outcomes[i].Request.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record outcomes: commit: %w", err)
	}
	return nil
}

type recordStmts struct {
	update, attempt, result *sql.Stmt
}

func prepareRecord(ctx context.Context, tx *sql.Tx) (*recordStmts, error) {
	var st recordStmts
	var err error
	if st.update, err = tx.PrepareContext(ctx, `UPDATE requests SET status = ?, attempts = attempts + ?,
		not_before = ?, error_class = ?, error_status_code = ?, error_message = ?, error_body = ?
		WHERE id = ? AND status = 'running'`); err != nil {
		return nil, err
	}
	if st.attempt, err = tx.PrepareContext(ctx, `INSERT INTO attempts (job_id, request_id, number, started_at,
		duration_ms, status_code, error_class, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`); err != nil {
		st.close()
		return nil, err
	}
	if st.result, err = tx.PrepareContext(ctx, `INSERT INTO results (request_id, job_id, status_code,
		response_id, provider_request_id, model, raw, content, reasoning_content, finish_reason,
		usage_known, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, total_tokens,
		latency_ms, ttft_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`); err != nil {
		st.close()
		return nil, err
	}
	return &st, nil
}

func (st *recordStmts) close() {
	for _, s := range []*sql.Stmt{st.update, st.attempt, st.result} {
		if s != nil {
			s.Close()
		}
	}
}

func (st *recordStmts) record(ctx context.Context, o *jobs.Outcome) error {
	r := &o.Request
	if err := jobs.CheckTransition(jobs.StatusRunning, o.Next); err != nil {
		return err
	}
	if o.Next == jobs.StatusSucceeded && o.Result == nil {
		return errors.New("succeeded without a result") // a succeeded request has exactly one
	}
	counted := 0
	if o.CountAttempt {
		counted = 1
	}
	var class, msg, code, body any
	if f := o.Failure; f != nil {
		class, code, msg, body = string(f.Class), f.StatusCode, f.Message, nullBytes(f.Body)
	}
	res, err := st.update.ExecContext(ctx, string(o.Next), counted, millis(o.NotBefore), class, code, msg, body, r.ID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err // no longer running: another run or a cancel got there first
	}
	if a := o.Attempt; a != nil {
		if _, err := st.attempt.ExecContext(ctx, r.JobID, r.ID, a.Number, millis(a.StartedAt),
			a.Duration.Milliseconds(), a.StatusCode, nullString(string(a.Class)), nullString(a.Message)); err != nil {
			return err
		}
	}
	if o.Next == jobs.StatusSucceeded && o.Result != nil {
		return st.insertResult(ctx, r, o.Result)
	}
	return nil
}

func (st *recordStmts) insertResult(ctx context.Context, r *jobs.Request, res *jobs.Result) error {
	u := res.Usage
	var ttft any
	if res.TTFT > 0 {
		ttft = res.TTFT.Milliseconds()
	}
	_, err := st.result.ExecContext(ctx, r.ID, r.JobID, res.StatusCode, res.ResponseID, res.ProviderRequestID,
		res.Model, []byte(res.Raw), res.Content, res.ReasoningContent, res.FinishReason,
		u.Known, u.PromptTokens, u.CompletionTokens, u.ReasoningTokens, u.CachedTokens, u.TotalTokens,
		res.Latency.Milliseconds(), ttft, millis(res.CreatedAt))
	return err
}

// Waiting returns how many requests of an active job are pending and the
// earliest not-before time among them.
func (s *Store) Waiting(ctx context.Context, jobID int64) (int, time.Time, error) {
	var n int
	var next sql.NullInt64
	err := s.w.QueryRowContext(ctx, `SELECT count(*), min(not_before) FROM requests
		WHERE job_id = ? AND status = 'pending' AND (SELECT state FROM jobs WHERE id = ?) = 'active'`,
		jobID, jobID).Scan(&n, &next)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count pending requests: %w", err)
	}
	return n, fromMillis(next.Int64), nil
}

// Recover puts running requests, which only a dead run can have left while
// the caller holds the lock, back to pending without using an attempt.
func (s *Store) Recover(ctx context.Context, jobID int64) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE requests SET status = 'pending' WHERE job_id = ? AND status = 'running'`, jobID)
	if err != nil {
		return 0, fmt.Errorf("recover orphaned requests: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
