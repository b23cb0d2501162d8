package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"

	"github.com/llmbatch/llmbatch/jobs"
)

// Record applies outcomes in one transaction (the group commit). Each
// applies only while its request is still running, so a result can never be
// recorded twice, whatever runs and restarts came between. Plain successes
// (the bulk of a run) move to succeeded a statement of many requests at a
// time; every other outcome is updated on its own, as its values differ.
// The attempts and results of those that applied are inserted a few
// statements of many rows each: a statement per row costs SQLite and cgo
// several times more.
func (s *Store) Record(ctx context.Context, outcomes []jobs.Outcome) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	defer tx.Rollback()
	applied, err := applyOutcomes(ctx, tx, outcomes)
	if err != nil {
		return err
	}
	if err := insertRows(ctx, tx, applied); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record outcomes: commit: %w", err)
	}
	return nil
}

// insertRows inserts the attempts and results of the outcomes that
// applied. Those of a provider batch name it; the online ones, nearly all,
// go in through statements that leave that column out (NULL).
func insertRows(ctx context.Context, tx *sql.Tx, applied []*jobs.Outcome) error {
	var attempts, results [2][]*jobs.Outcome // [0] online, [1] of a provider batch
	for _, o := range applied {
		k := 0
		if b, _ := outcomeBatch(o); b != 0 {
			k = 1
		}
		if o.Attempt != nil {
			attempts[k] = append(attempts[k], o)
		}
		if o.Next == jobs.StatusSucceeded {
			results[k] = append(results[k], o)
		}
	}
	for k, batched := range []bool{false, true} {
		if err := execRows(ctx, tx, attemptInserts[k], len(attempts[k]), func(args []any, i int) []any {
			return appendAttempt(args, attempts[k][i], batched)
		}); err != nil {
			return fmt.Errorf("record outcomes: attempts: %w", err)
		}
		if err := execRows(ctx, tx, resultInserts[k], len(results[k]), func(args []any, i int) []any {
			o := results[k][i]
			args = appendResult(args, &o.Request, o.Result)
			if batched {
				b, _ := outcomeBatch(o)
				args = append(args, b)
			}
			return args
		}); err != nil {
			return fmt.Errorf("record outcomes: results: %w", err)
		}
	}
	return nil
}

// appendAttempt appends the values of o's attempt for attemptInserts[0],
// or, batched, for attemptInserts[1].
func appendAttempt(args []any, o *jobs.Outcome, batched bool) []any {
	a := o.Attempt
	args = append(args, o.Request.JobID, o.Request.ID, a.Number, millis(a.StartedAt),
		a.Duration.Milliseconds(), a.StatusCode, nullString(string(a.Class)), nullString(a.Message))
	if batched {
		b, _ := outcomeBatch(o)
		args = append(args, b)
	}
	return args
}

// applyOutcomes moves each outcome's request from running to its next
// status and returns the outcomes that applied, in their order; one whose
// request was no longer running (another run or a cancel got there first)
// is left out. Should a batch hold two outcomes for one request, the plain
// success among them is the one that applies.
func applyOutcomes(ctx context.Context, tx *sql.Tx, outcomes []jobs.Outcome) ([]*jobs.Outcome, error) {
	var plain []*jobs.Outcome
	for i := range outcomes {
		o := &outcomes[i]
		if err := jobs.CheckTransition(jobs.StatusRunning, o.Next); err != nil {
			return nil, fmt.Errorf("record request %d: %w", o.Request.ID, err)
		}
		if o.Next == jobs.StatusSucceeded && o.Result == nil {
			return nil, fmt.Errorf("record request %d: succeeded without a result", o.Request.ID)
		}
		if _, err := outcomeBatch(o); err != nil {
			return nil, fmt.Errorf("record request %d: %w", o.Request.ID, err)
		}
		if isPlainSuccess(o) {
			plain = append(plain, o)
		}
	}
	moved, err := succeedAll(ctx, tx, plain)
	if err != nil {
		return nil, fmt.Errorf("record outcomes: %w", err)
	}
	var up updates
	defer up.close()
	applied := make([]*jobs.Outcome, 0, len(outcomes))
	for i := range outcomes {
		o := &outcomes[i]
		if isPlainSuccess(o) {
			if moved[0] {
				applied = append(applied, o)
			}
			moved = moved[1:]
			continue
		}
		ok, err := up.apply(ctx, tx, o)
		if err != nil {
			return nil, fmt.Errorf("record request %d: %w", o.Request.ID, err)
		}
		if ok {
			applied = append(applied, o)
		}
	}
	return applied, nil
}

// updates are the statements that apply outcomes one at a time, prepared
// once per transaction when first needed: outcomeUpdate for an online
// outcome, batchOutcomeUpdate for one of a provider batch.
type updates struct{ online, batch *sql.Stmt }

// apply applies o with the statement for its kind, and reports whether
// its request was running (in o's batch, for a batch outcome).
func (up *updates) apply(ctx context.Context, tx *sql.Tx, o *jobs.Outcome) (bool, error) {
	batch, _ := outcomeBatch(o)
	stmt, text := &up.online, outcomeUpdate
	if batch != 0 {
		stmt, text = &up.batch, batchOutcomeUpdate
	}
	if *stmt == nil {
		var err error
		if *stmt, err = tx.PrepareContext(ctx, text); err != nil {
			return false, err
		}
	}
	return applyOutcome(ctx, *stmt, o, batch)
}

func (up *updates) close() {
	for _, st := range []*sql.Stmt{up.online, up.batch} {
		if st != nil {
			st.Close()
		}
	}
}

// outcomeBatch is the provider batch that answered o (its attempt's, else
// its result's), 0 for an online outcome; the attempt and the result must
// not name two batches.
func outcomeBatch(o *jobs.Outcome) (int64, error) {
	var a, r int64
	if o.Attempt != nil {
		a = o.Attempt.ProviderBatch
	}
	if o.Result != nil {
		r = o.Result.ProviderBatch
	}
	if a != 0 && r != 0 && a != r {
		return 0, fmt.Errorf("attempt of provider batch %d, result of %d", a, r)
	}
	return max(a, r), nil
}

// isPlainSuccess says whether o is an online success that used one
// attempt and leaves nothing else to set: the values succeedAll gives
// every request. A batch's answer applies only while its request is
// still in that batch, which succeedAll does not check.
func isPlainSuccess(o *jobs.Outcome) bool {
	return o.Next == jobs.StatusSucceeded && o.CountAttempt && o.Failure == nil && o.NotBefore.IsZero() &&
		(o.Attempt == nil || o.Attempt.ProviderBatch == 0) && (o.Result == nil || o.Result.ProviderBatch == 0)
}

// succeedAll moves the requests of plain successes that are still running
// to succeeded, and says of each outcome whether it moved its request. A
// statement that moves fewer requests than it names (one was recorded or
// cancelled meanwhile, or is named twice: rare) is undone, and its
// requests are moved one by one to learn which.
func succeedAll(ctx context.Context, tx *sql.Tx, plain []*jobs.Outcome) ([]bool, error) {
	moved := make([]bool, len(plain))
	for done := 0; done < len(plain); {
		k := rowsIn(len(plain) - done)
		all, err := succeedChunk(ctx, tx, plain[done:done+k])
		if err != nil {
			return nil, err
		}
		for i := done; i < done+k; i++ {
			if all {
				moved[i] = true
				continue
			}
			res, err := tx.ExecContext(ctx, markSucceeded.sql(1), plain[i].Request.ID)
			if err != nil {
				return nil, err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return nil, err
			}
			moved[i] = n > 0
		}
		done += k
	}
	return moved, nil
}

// succeedChunk moves the requests of chunk to succeeded if every one of
// them is still running, and reports whether it did. It counts them
// first rather than undoing a partial update: a savepoint would make
// SQLite copy every page the update touches into its sub-journal.
func succeedChunk(ctx context.Context, tx *sql.Tx, chunk []*jobs.Outcome) (bool, error) {
	args := make([]any, len(chunk))
	for i, o := range chunk {
		args[i] = o.Request.ID
	}
	var running int
	if err := tx.QueryRowContext(ctx, countRunning.sql(len(chunk)), args...).Scan(&running); err != nil {
		return false, err
	}
	if running < len(chunk) { // one was recorded or cancelled meanwhile, or is named twice
		return false, nil
	}
	res, err := tx.ExecContext(ctx, markSucceeded.sql(len(chunk)), args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err == nil && n != int64(len(chunk)) {
		err = fmt.Errorf("moved %d of %d running requests", n, len(chunk))
	}
	return err == nil, err
}

// outcomeUpdate moves one request from running to the outcome's status.
const outcomeUpdate = `UPDATE requests SET status = ?, attempts = attempts + ?,
	not_before = ?, error_class = ?, error_status_code = ?, error_message = ?, error_body = ?,
	error_request_id = ? WHERE id = ? AND status = 'running'`

// batchOutcomeUpdate is outcomeUpdate for the answer of a provider batch:
// it applies only while the request is running in that batch and the batch
// is open. Once collected, a request that still names it was put back and
// claimed since, and a late line of the batch must not be its answer.
const batchOutcomeUpdate = outcomeUpdate + ` AND provider_batch = ?
	AND EXISTS (SELECT 1 FROM provider_batches WHERE id = ? AND state != 'collected')`

// applyOutcome moves the outcome's request from running to its next
// status, with its failure's columns (all NULL without one, so that a
// success clears the last error); it reports false when the request was
// no longer running. A batch's outcome (batch != 0) goes through
// batchOutcomeUpdate.
func applyOutcome(ctx context.Context, update *sql.Stmt, o *jobs.Outcome, batch int64) (bool, error) {
	counted := 0
	if o.CountAttempt {
		counted = 1
	}
	var class, msg, code, body, reqID any
	if f := o.Failure; f != nil {
		class, code, msg, body, reqID = string(f.Class), f.StatusCode, f.Message, nullBytes(f.Body), nullString(f.RequestID)
	}
	args := []any{string(o.Next), counted, millis(o.NotBefore), class, code, msg, body, reqID, o.Request.ID}
	if batch != 0 {
		args = append(args, batch, batch)
	}
	res, err := update.ExecContext(ctx, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// attemptInserts and resultInserts are the multi-row inserts Record makes,
// of online outcomes ([0]) and of provider batches' ([1], with the batch),
// markSucceeded its update of plain successes (after countRunning);
// markRunning is the claim's update.
//
// The updates are OR FAIL: a statement that may abort half-way (ABORT, the
// default) makes SQLite copy each page it touches into a statement journal,
// which for these updates of many requests outgrows memory and is written
// to a temporary file. FAIL keeps the rows changed before a failing one,
// which never reach the database: any error rolls the whole transaction
// back (Record, Claim).
var (
	attemptInserts = [2]rowsStmt{
		{head: `INSERT INTO attempts (job_id, request_id, number, started_at,
		duration_ms, status_code, error_class, message) VALUES `, cols: 8},
		{head: `INSERT INTO attempts (job_id, request_id, number, started_at,
		duration_ms, status_code, error_class, message, provider_batch) VALUES `, cols: 9},
	}
	resultInserts = [2]rowsStmt{
		{head: `INSERT INTO results (` + resultColumns + `) VALUES `, cols: 19},
		{head: `INSERT INTO results (` + resultColumns + `, provider_batch) VALUES `, cols: 20},
	}
	markRunning = rowsStmt{head: `UPDATE OR FAIL requests SET status = 'running' WHERE status = 'pending' AND id IN (`,
		cols: 1, tail: `)`}
	countRunning = rowsStmt{head: `SELECT count(*) FROM requests WHERE status = 'running' AND id IN (`,
		cols: 1, tail: `)`}
	markSucceeded = rowsStmt{head: `UPDATE OR FAIL requests SET status = 'succeeded', attempts = attempts + 1, not_before = 0,
		error_class = NULL, error_status_code = NULL, error_message = NULL, error_body = NULL,
		error_request_id = NULL WHERE status = 'running' AND id IN (`, cols: 1, tail: `)`}
)

// resultColumns are the columns appendResult gives values for.
const resultColumns = `request_id, job_id, status_code, response_id, provider_request_id, model, raw, content,
	reasoning_content, finish_reason, usage_known, prompt_tokens, completion_tokens, reasoning_tokens,
	cached_tokens, total_tokens, latency_ms, ttft_ms, created_at`

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
// 1,280 parameters at most, far below SQLite's limit of 32,766.
const maxRowsPerInsert = 64

// execRows runs the statement over n rows, whose values add appends
// (row i), in statements of a power of two of rows each (64 at most), so
// that a connection's statement cache holds a few shapes only.
func execRows(ctx context.Context, tx *sql.Tx, ins rowsStmt, n int, add func(args []any, i int) []any) error {
	args := make([]any, 0, min(n, maxRowsPerInsert)*ins.cols)
	for done := 0; done < n; {
		k := rowsIn(n - done)
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

// rowsIn is how many of n rows the next statement takes: the largest
// power of two up to maxRowsPerInsert.
func rowsIn(n int) int {
	k := maxRowsPerInsert
	for k > n {
		k /= 2
	}
	return k
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
