package postgres

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

// Record applies outcomes in one transaction (the group commit). Each
// applies only while its request is still running under the lease of the
// run that locked its job through this store (leaseHeld), so a result can
// never be recorded twice, whatever runs, runners and restarts came
// between: the UPDATE that moves a request out of running takes its row
// lock, and a second Record of the same request, on this host or another,
// finds it no longer running, or no longer its run's; a run whose lease
// expired (it was stopped, or cut off, for a lease period) records
// nothing of what it held, which another run may have taken since. Plain
// successes (the bulk of a run) move in one statement; every other outcome
// has a statement of its own, all sent in one round trip; the attempts and
// results of those that applied then go in as one INSERT … SELECT FROM
// unnest(…) each.
func (s *Store) Record(ctx context.Context, outcomes []jobs.Outcome) error {
	if err := checkOutcomes(outcomes); err != nil {
		return err
	}
	if len(outcomes) == 0 {
		return nil
	}
	if err := s.record(ctx, outcomes); err != nil {
		return s.givenUp(ctx, outcomes[0].Request.JobID, err)
	}
	return nil
}

func (s *Store) record(ctx context.Context, outcomes []jobs.Outcome) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	defer tx.Rollback(ctx)
	applied, err := applyOutcomes(ctx, tx, outcomes, &s.leases)
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	if err := insertRows(ctx, tx, applied); err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record outcomes: commit: %w", err)
	}
	return nil
}

// checkOutcomes refuses the whole batch when one outcome is not a move the
// life cycle allows from running, a success comes without its result, or
// an attempt and a result name two provider batches.
func checkOutcomes(outcomes []jobs.Outcome) error {
	for i := range outcomes {
		o := &outcomes[i]
		if err := jobs.CheckTransition(jobs.StatusRunning, o.Next); err != nil {
			return fmt.Errorf("record request %d: %w", o.Request.ID, err)
		}
		if o.Next == jobs.StatusSucceeded && o.Result == nil {
			return fmt.Errorf("record request %d: succeeded without a result", o.Request.ID)
		}
		if _, err := outcomeBatch(o); err != nil {
			return fmt.Errorf("record request %d: %w", o.Request.ID, err)
		}
	}
	return nil
}

// applyOutcomes moves each outcome's request from running to its next
// status and returns the outcomes that applied, in their order; one whose
// request was no longer running (another run or a cancel got there first)
// is left out. Of two outcomes for one request, the plain success among
// them is the one that applies, else the first: the others are not sent.
//
// Rows are locked first, in id order, by one SELECT … FOR UPDATE, so that
// two Records that meet on the same requests (runners on two hosts, one
// of which lost them) wait for each other instead of deadlocking: an
// UPDATE locks rows in the order its plan reads them, which after a few
// updates is not id order. The lock rides in the same round trip as the
// updates, and so does the bound on how long the transaction may sit idle
// holding it (queueIdleBound).
func applyOutcomes(ctx context.Context, tx pgx.Tx, outcomes []jobs.Outcome, runs *leases) ([]*jobs.Outcome, error) {
	tokenOf := runs.tokenOf
	chosen := chooseOutcomes(outcomes)
	var all []int64
	var plain []successGroup
	var others []*jobs.Outcome
	for _, o := range inIDOrder(chosen) {
		all = append(all, o.Request.ID)
		if isPlainSuccess(o) {
			plain = addSuccess(plain, o.Request, tokenOf)
		} else {
			others = append(others, o)
		}
	}
	b := &pgx.Batch{}
	run, bounded := runs.of(outcomes[0].Request.JobID)
	if bounded {
		queueIdleBound(b, run.period)
	}
	lockFirst := len(all) > 1
	if lockFirst {
		b.Queue(`SELECT id FROM requests WHERE id = ANY($1) AND status = 'running' ORDER BY id FOR UPDATE`, all)
	}
	for _, p := range plain {
		b.Queue(markSucceeded, p.ids, p.token)
	}
	for _, o := range others {
		queueOutcome(b, o, tokenOf(o.Request.JobID))
	}
	res := tx.SendBatch(ctx, b)
	defer res.Close()
	if bounded {
		if _, err := res.Exec(); err != nil {
			return nil, fmt.Errorf("bound idle time: %w", err)
		}
	}
	if lockFirst {
		if _, err := res.Exec(); err != nil {
			return nil, fmt.Errorf("lock requests: %w", err)
		}
	}
	moved, err := movedIDs(res, len(plain))
	if err != nil {
		return nil, err
	}
	for _, o := range others {
		tag, err := res.Exec()
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", o.Request.ID, err)
		}
		moved[o.Request.ID] = tag.RowsAffected() > 0
	}
	applied := make([]*jobs.Outcome, 0, len(chosen))
	for i := range outcomes {
		if o := &outcomes[i]; chosen[o.Request.ID] == o && moved[o.Request.ID] {
			applied = append(applied, o)
		}
	}
	return applied, res.Close()
}

// chooseOutcomes picks, for each request, the outcome that applies if any
// does: its first plain success, else its first outcome. Ranging over the
// map is in no order: inIDOrder sorts it.
func chooseOutcomes(outcomes []jobs.Outcome) map[int64]*jobs.Outcome {
	chosen := make(map[int64]*jobs.Outcome, len(outcomes))
	for i := range outcomes {
		o := &outcomes[i]
		if prev, ok := chosen[o.Request.ID]; !ok || (isPlainSuccess(o) && !isPlainSuccess(prev)) {
			chosen[o.Request.ID] = o
		}
	}
	return chosen
}

// inIDOrder lists the chosen outcomes by request id.
func inIDOrder(chosen map[int64]*jobs.Outcome) []*jobs.Outcome {
	list := slices.Collect(maps.Values(chosen))
	slices.SortFunc(list, func(a, b *jobs.Outcome) int { return cmp.Compare(a.Request.ID, b.Request.ID) })
	return list
}

// successGroup is the plain successes recorded under one run's lease
// (token, nil for none): one markSucceeded each. A Record usually holds
// one job's outcomes, so there is one.
type successGroup struct {
	token *string
	ids   []int64
}

// addSuccess adds r to the successes of its job's run.
func addSuccess(list []successGroup, r jobs.Request, tokenOf func(jobID int64) *string) []successGroup {
	token := tokenOf(r.JobID)
	for i := range list {
		if (list[i].token == nil) == (token == nil) && (token == nil || *list[i].token == *token) {
			list[i].ids = append(list[i].ids, r.ID)
			return list
		}
	}
	return append(list, successGroup{token: token, ids: []int64{r.ID}})
}

// movedIDs reads the ids the queued markSucceeded statements moved.
func movedIDs(res pgx.BatchResults, queued int) (map[int64]bool, error) {
	moved := map[int64]bool{}
	for range queued {
		rows, err := res.Query()
		if err != nil {
			return nil, err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			moved[id] = true
		}
	}
	return moved, nil
}

// leaseHeld is true of a request (of the statement's table requests) whose
// lease the run $N holds and has not let expire; with $N NULL (no run of
// this store locked the job), of a request nobody leased. It is what
// Record's updates add to "still running".
func leaseHeld(n int) string {
	p := fmt.Sprintf("$%d::text", n)
	return `requests.lease_owner IS NOT DISTINCT FROM ` + p +
		` AND (requests.lease_until IS NULL OR requests.lease_until >= llmbatch_now_ms())`
}

// markSucceeded moves the requests of plain successes ($1, their ids)
// that are still running under the lease of $2 to succeeded, using one
// attempt, and returns those it moved. A request named twice moves once.
var markSucceeded = `UPDATE requests SET status = 'succeeded', attempts = attempts + 1, not_before = 0,
	error_class = NULL, error_status_code = NULL, error_message = NULL, error_body = NULL,
	error_request_id = NULL, lease_owner = NULL, lease_until = NULL
	WHERE id = ANY($1) AND status = 'running' AND ` + leaseHeld(2) + ` RETURNING id`

// outcomeUpdate moves one request from running to the outcome's status.
const outcomeUpdate = `UPDATE requests SET status = $1, attempts = attempts + $2,
	not_before = $3, error_class = $4, error_status_code = $5, error_message = $6, error_body = $7,
	error_request_id = $8, lease_owner = NULL, lease_until = NULL WHERE id = $9 AND status = 'running'`

// onlineOutcomeUpdate is outcomeUpdate for an answer online: it applies
// only under the lease of the run $10.
var onlineOutcomeUpdate = outcomeUpdate + ` AND ` + leaseHeld(10)

// batchOutcomeUpdate is outcomeUpdate for the answer of a provider batch
// ($10): it applies only while the request is running in that batch and
// the batch is open, whichever run records it (the run that made the
// batch may be gone; a batch's requests are leased to no run). Once
// collected, a request that still names it was put back and claimed
// since, and a late line of the batch must not be its answer.
const batchOutcomeUpdate = outcomeUpdate + ` AND provider_batch = $10
	AND EXISTS (SELECT 1 FROM provider_batches WHERE id = $10 AND state <> 'collected')`

// queueOutcome queues the update that moves o's request from running to
// its next status, with its failure's columns (all NULL without one, so
// that a success clears the last error), under the lease of token.
func queueOutcome(b *pgx.Batch, o *jobs.Outcome, token *string) {
	counted := 0
	if o.CountAttempt {
		counted = 1
	}
	var class, msg, reqID *string
	var code *int
	var body []byte
	if f := o.Failure; f != nil {
		c := string(f.Class)
		class, code, msg, body, reqID = &c, &f.StatusCode, &f.Message, f.Body, ptrUnlessEmpty(f.RequestID)
	}
	args := []any{string(o.Next), counted, millis(o.NotBefore), class, code, msg, body, reqID, o.Request.ID}
	if batch, _ := outcomeBatch(o); batch != 0 {
		b.Queue(batchOutcomeUpdate, append(args, batch)...)
		return
	}
	b.Queue(onlineOutcomeUpdate, append(args, token)...)
}

// ptrUnlessEmpty is &s, or nil (NULL) for "".
func ptrUnlessEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
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
// attempt and leaves nothing else to set: the values markSucceeded gives
// every request. A batch's answer applies only while its request is still
// in that batch, which markSucceeded does not check.
func isPlainSuccess(o *jobs.Outcome) bool {
	return o.Next == jobs.StatusSucceeded && o.CountAttempt && o.Failure == nil && o.NotBefore.IsZero() &&
		(o.Attempt == nil || o.Attempt.ProviderBatch == 0) && (o.Result == nil || o.Result.ProviderBatch == 0)
}
