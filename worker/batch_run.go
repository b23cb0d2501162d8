package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// Defaults of a batch-mode run: the limits of OpenAI's Batch API (50,000
// requests and 200 MB per file), with a margin on the bytes.
const (
	DefaultBatchMaxRequests = 50_000
	DefaultBatchMaxBytes    = 190 << 20
	DefaultBatchPoll        = 30 * time.Second
	DefaultBatchWindow      = "24h"
)

// BatchOptions configure a BatchRunner.
type BatchOptions struct {
	// JobName goes into each batch's Key, to tell the job's files apart at
	// the provider.
	JobName string
	// MaxRequests and MaxBytes bound one input file.
	MaxRequests int
	MaxBytes    int64
	// Poll is the wait between two looks at the open batches.
	Poll time.Duration
	// Window is the completion_window asked for: DefaultBatchWindow, or
	// what a provider insists on (Novita/PPIO: 48h).
	Window string
	// Fallback leaves what the batches did not answer pending for an
	// online run (Run returns once no batch is open); without it, it goes
	// into the next batch.
	Fallback bool
	// Detach returns once every batch is submitted, without waiting.
	Detach bool
	// CollectOnly makes no new batch: it finishes submitting the batches a
	// killed run left, records those that ended and returns (an online run
	// starting on a job with batches).
	CollectOnly bool
	// MaxAttempts bounds the attempts of a line, batch and online together.
	MaxAttempts int
	// Budget limits tokens and cost: a file's worst case is reserved before
	// it is uploaded.
	Budget Budget
	// TempDir holds the input files while they are written and uploaded;
	// "" is the system's.
	TempDir string
	// Event, when set, is told what happens, from Run's goroutine.
	Event func(BatchEvent)
	Now   func() time.Time
}

// BatchEvent is something a BatchRunner did or saw.
type BatchEvent struct {
	// Kind is "submitted", "ended", "collected", "split", "refused",
	// "waiting" or "retrying".
	Kind  string
	Batch jobs.ProviderBatch
	// Left counts the requests a collected batch left unanswered, back to
	// pending; Text says more (what became of the lines of a collected
	// batch).
	Left int
	Text string
}

// BatchStore is what a BatchRunner needs of the store.
type BatchStore interface {
	jobs.Queue
	jobs.ProviderBatches
}

// BatchRunner sends a job's pending requests through the provider's Batch
// API and records what the batches answer. Every step is stored before the
// next is taken, so a run killed anywhere goes on from there: a batch is
// stored with its requests before its file is uploaded, its file id and
// batch id as soon as the provider returns them, and a lost answer is
// looked for at the provider (by the batch's Key) before anything is sent
// again.
type BatchRunner struct {
	st     BatchStore
	jobID  int64
	client *Client
	opts   BatchOptions
	budget *budget
	// refused counts the rounds in a row whose batches the provider
	// refused at validation for a reason a smaller file does not cure;
	// roundRefused and roundAnswered say what the batches collected since
	// the last round ended did.
	refused                     int
	roundRefused, roundAnswered bool
	// resubmit holds the requests of refused batches, which go into new
	// batches even with Fallback.
	resubmit map[int64]bool
	// rounds counts the rounds of new batches made.
	rounds int
	// lastRefusal is the provider's message of the last refused batch.
	lastRefusal string
	progress    *batchProgress
	// fatal is the first line answered with a fatal error (a refused key):
	// the run stops once its batch is collected.
	fatal error
}

// NewBatchRunner returns a runner of jobID's requests through client's
// Batch API.
func NewBatchRunner(st BatchStore, jobID int64, client *Client, opts BatchOptions) *BatchRunner {
	if opts.MaxRequests <= 0 {
		opts.MaxRequests = DefaultBatchMaxRequests
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultBatchMaxBytes
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultBatchPoll
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.Window == "" {
		opts.Window = DefaultBatchWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &BatchRunner{st: st, jobID: jobID, client: client, opts: opts, budget: newBudget(opts.Budget),
		resubmit: map[int64]bool{}, progress: newBatchProgress()}
}

// maxRefused is how many rounds in a row the provider may refuse before
// the run gives up: a refusal that splitting does not cure would repeat.
const maxRefused = 3

// Run re-attaches to the job's open batches, makes new ones of its pending
// requests (unless CollectOnly), waits for them (unless Detach or
// CollectOnly) and records what they answer. It returns nil when no batch
// is open (or, with Detach, all are submitted); ctx's error when
// interrupted; a *BudgetError when the budget left no room for a file; a
// *FatalError when the provider refused the key.
func (b *BatchRunner) Run(ctx context.Context) error {
	open, err := b.openBatches(ctx)
	if err != nil {
		return err
	}
	for i := range open {
		if err := b.reserveOpen(ctx, open[i]); err != nil {
			return err
		}
	}
	plan := !b.opts.CollectOnly
	for {
		for i := range open {
			if err := b.advance(ctx, &open[i]); err != nil {
				return err
			}
		}
		if plan {
			made, err := b.plan(ctx)
			if err != nil {
				return err
			}
			open = append(open, made...)
			plan = false
			if len(open) == 0 {
				return b.budget.err()
			}
		}
		if b.opts.Detach {
			return b.budget.err()
		}
		open, err = b.look(ctx, open)
		if err != nil {
			return err
		}
		if b.fatal != nil {
			return b.fatal
		}
		if len(open) == 0 {
			if b.endRound() >= maxRefused {
				return fmt.Errorf("the provider refused the batches of %d rounds in a row; the last said: %s", b.refused, b.lastRefusal)
			}
			if b.opts.CollectOnly {
				return nil
			}
			if plan = b.morePlanned(); !plan {
				return b.budget.err()
			}
			continue
		}
		if b.opts.CollectOnly {
			return nil
		}
		b.event(BatchEvent{Kind: "waiting", Text: openSummary(open)})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(b.opts.Poll):
		}
	}
}

// endRound counts a round whose batches were all refused (for a reason a
// smaller file does not cure), or starts the count again, and returns it.
func (b *BatchRunner) endRound() int {
	switch {
	case b.roundAnswered:
		b.refused = 0
	case b.roundRefused:
		b.refused++
	}
	b.roundRefused, b.roundAnswered = false, false
	return b.refused
}

// morePlanned says whether another round of batches is to be made once
// every open one was collected: refused batches always go again; with
// Fallback nothing else does (the online run takes what is left).
func (b *BatchRunner) morePlanned() bool {
	if len(b.resubmit) > 0 {
		return true
	}
	return !b.opts.Fallback && b.budget.err() == nil
}

func (b *BatchRunner) event(e BatchEvent) {
	if b.opts.Event != nil {
		b.opts.Event(e)
	}
}

// openBatches lists the job's batches that still hold requests.
func (b *BatchRunner) openBatches(ctx context.Context) ([]jobs.ProviderBatch, error) {
	all, err := b.st.Batches(ctx, b.jobID)
	if err != nil {
		return nil, err
	}
	var open []jobs.ProviderBatch
	for _, pb := range all {
		if pb.State.Open() {
			open = append(open, pb)
		}
	}
	return open, nil
}

// reserveOpen holds the worst case of a batch a former run made against the
// budget, until it is collected.
func (b *BatchRunner) reserveOpen(ctx context.Context, pb jobs.ProviderBatch) error {
	if !b.budget.active() {
		return nil
	}
	return b.st.BatchRequests(ctx, pb.ID, true, func(r jobs.Request) error {
		b.budget.reserveBatch(r.Model, r.Body)
		return nil
	})
}

// advance takes a batch a step on, as far as submitted: a new batch's file
// is found at the provider or uploaded, an uploaded file's batch found or
// created.
func (b *BatchRunner) advance(ctx context.Context, pb *jobs.ProviderBatch) error {
	if pb.State == jobs.BatchNew {
		if err := b.upload(ctx, pb); err != nil {
			return err
		}
	}
	if pb.State == jobs.BatchUploaded {
		return b.submit(ctx, pb)
	}
	return nil
}

// upload finds the batch's file at the provider (an upload whose answer a
// killed run never saw) or uploads it again from the requests it holds.
func (b *BatchRunner) upload(ctx context.Context, pb *jobs.ProviderBatch) error {
	var f fileObject
	var found bool
	err := b.call(ctx, func() (err error) {
		f, found, err = b.client.findFile(ctx, pb.Key)
		return err
	})
	var ae *BatchAPIError
	if errors.As(err, &ae) && ae.NotServed() {
		return err // no Batch API at all: say so now
	}
	if !found {
		path, err := b.writeFile(ctx, pb)
		if err != nil {
			return err
		}
		defer os.Remove(path)
		if err := b.call(ctx, func() (err error) {
			f, err = b.client.uploadFile(ctx, pb.Key, path)
			return err
		}); err != nil {
			return err
		}
	}
	pb.InputFileID, pb.State = f.ID, jobs.BatchUploaded
	return b.st.UpdateBatch(ctx, *pb)
}

// writeFile writes the input file of the requests the batch holds.
func (b *BatchRunner) writeFile(ctx context.Context, pb *jobs.ProviderBatch) (string, error) {
	f, err := os.CreateTemp(b.opts.TempDir, "llmbatch-batch-*.jsonl")
	if err != nil {
		return "", fmt.Errorf("write batch file: %w", err)
	}
	w := newLineWriter(f)
	err = b.st.BatchRequests(ctx, pb.ID, true, func(r jobs.Request) error {
		return w.add(r)
	})
	if err == nil {
		err = w.close()
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("write batch file: %w", err)
	}
	return f.Name(), nil
}

// submit finds the batch of the uploaded file at the provider (a create
// whose answer a killed run never saw) or creates it.
func (b *BatchRunner) submit(ctx context.Context, pb *jobs.ProviderBatch) error {
	var bo batchObject
	var found bool
	if err := b.call(ctx, func() (err error) {
		bo, found, err = b.client.findBatch(ctx, pb.Key, pb.InputFileID)
		return err
	}); err != nil {
		return err
	}
	if !found {
		if err := b.call(ctx, func() (err error) {
			bo, err = b.client.createBatch(ctx, pb.InputFileID, pb.Endpoint, pb.Key, b.opts.Window)
			return err
		}); err != nil {
			return err
		}
	}
	pb.BatchID, pb.State = bo.ID, jobs.BatchSubmitted
	b.update(pb, bo)
	if err := b.st.UpdateBatch(ctx, *pb); err != nil {
		return err
	}
	b.event(BatchEvent{Kind: "submitted", Batch: *pb})
	return nil
}

// update copies what the provider says of the batch.
func (b *BatchRunner) update(pb *jobs.ProviderBatch, bo batchObject) {
	pb.ProviderStatus, pb.Counts = bo.Status, bo.RequestCounts
	if m := bo.message(); m != "" {
		pb.Message = b.client.redact(m)
	}
	if bo.final() {
		pb.State = jobs.BatchEnded
		pb.OutputFileID, pb.ErrorFileID = deref(bo.OutputFileID), deref(bo.ErrorFileID)
	}
}

// look polls each submitted batch once, collects those that ended and
// returns those still open.
func (b *BatchRunner) look(ctx context.Context, open []jobs.ProviderBatch) ([]jobs.ProviderBatch, error) {
	var still []jobs.ProviderBatch
	for _, pb := range open {
		if pb.State == jobs.BatchSubmitted {
			if err := b.poll(ctx, &pb); err != nil {
				return nil, err
			}
		}
		if pb.State == jobs.BatchEnded {
			if err := b.collect(ctx, &pb); err != nil {
				return nil, err
			}
		}
		if pb.State.Open() {
			still = append(still, pb)
		}
	}
	return still, nil
}

// poll reads the batch's status and stores what changed.
func (b *BatchRunner) poll(ctx context.Context, pb *jobs.ProviderBatch) error {
	var bo batchObject
	if err := b.call(ctx, func() (err error) {
		bo, err = b.client.getBatch(ctx, pb.BatchID)
		return err
	}); err != nil {
		return err
	}
	before := *pb
	b.update(pb, bo)
	b.progress.seen(*pb)
	if pb.ProviderStatus == before.ProviderStatus && pb.Counts == before.Counts && pb.State == before.State {
		return nil
	}
	if err := b.st.UpdateBatch(ctx, *pb); err != nil {
		return err
	}
	if pb.State == jobs.BatchEnded {
		b.event(BatchEvent{Kind: "ended", Batch: *pb})
	}
	return nil
}

// openSummary is the progress of the open batches, as the provider counts
// it: "3 batches open (2 in_progress, 1 validating): 1234 of 3000 lines
// answered, 5 failed".
func openSummary(open []jobs.ProviderBatch) string {
	var c jobs.BatchCounts
	by := map[string]int{}
	var order []string
	for _, pb := range open {
		c.Total += max(pb.Counts.Total, pb.Requests)
		c.Completed += pb.Counts.Completed
		c.Failed += pb.Counts.Failed
		st := pb.ProviderStatus
		if st == "" {
			st = string(pb.State)
		}
		if by[st] == 0 {
			order = append(order, st)
		}
		by[st]++
	}
	parts := make([]string, len(order))
	for i, st := range order {
		parts[i] = fmt.Sprintf("%d %s", by[st], st)
	}
	return fmt.Sprintf("%d open (%s): %d of %d lines answered, %d failed",
		len(open), strings.Join(parts, ", "), c.Completed, c.Total, c.Failed)
}

// collect records the lines of an ended batch's output and error files,
// puts what it left unanswered back to pending and marks it collected.
// A refused batch's requests are kept for a new batch, split as its error
// asks.
func (b *BatchRunner) collect(ctx context.Context, pb *jobs.ProviderBatch) error {
	b.progress.forget(pb.ID)
	byID, err := b.held(ctx, pb)
	if err != nil {
		return err
	}
	var tally lineTally
	for _, id := range []string{pb.OutputFileID, pb.ErrorFileID} {
		if id == "" {
			continue
		}
		if err := b.call(ctx, func() error { return b.record(ctx, pb, id, byID, &tally) }); err != nil {
			return err
		}
	}
	refused := pb.ProviderStatus == "failed" && pb.Counts.Completed == 0 && pb.Counts.Failed == 0 && tally.lines() == 0
	if refused {
		for _, r := range byID {
			if r.Attempts < b.opts.MaxAttempts {
				b.resubmit[r.ID] = true
			}
		}
		b.refusedBatch(pb)
	} else if tally.lines() > 0 {
		b.roundAnswered = true
	}
	left, err := b.st.CollectBatch(ctx, pb.ID)
	if err != nil {
		return err
	}
	for _, r := range byID {
		b.budget.releaseBatch(r.Model, r.Body)
	}
	pb.State, pb.Left = jobs.BatchCollected, left
	b.event(BatchEvent{Kind: "collected", Batch: *pb, Left: left, Text: tally.String()})
	return nil
}

// lineTally counts what became of the lines of a batch's files.
type lineTally struct{ succeeded, failed, retry int }

func (t *lineTally) add(o jobs.Outcome) {
	switch {
	case o.Next == jobs.StatusSucceeded:
		t.succeeded++
	case o.Next == jobs.StatusFailed:
		t.failed++
	default:
		t.retry++
	}
}

func (t lineTally) lines() int { return t.succeeded + t.failed + t.retry }

func (t lineTally) String() string {
	return fmt.Sprintf("%d succeeded, %d failed, %d to try again", t.succeeded, t.failed, t.retry)
}

// refusalLimit finds a limit in a refused batch's message.
var refusalLimit = regexp.MustCompile(`(?i)(too many|at most|maximum|exceed|limit)`)

// refusedBatch learns from a batch refused at validation: a file over the
// provider's line or size limit makes the next files half as large.
func (b *BatchRunner) refusedBatch(pb *jobs.ProviderBatch) {
	b.lastRefusal = pb.Message
	msg := strings.ToLower(pb.Message)
	switch {
	case pb.Requests > 1 && (strings.Contains(msg, "too_many_requests") ||
		(refusalLimit.MatchString(msg) && (strings.Contains(msg, "request") || strings.Contains(msg, "line")))):
		// Half of this file, whatever the limit was: two files refused in
		// one round halve it once.
		b.opts.MaxRequests = min(b.opts.MaxRequests, max(1, pb.Requests/2))
		b.event(BatchEvent{Kind: "split", Batch: *pb, Text: fmt.Sprintf("files of at most %d requests from now on", b.opts.MaxRequests)})
	case pb.Bytes > 2048 && refusalLimit.MatchString(msg) && (strings.Contains(msg, "byte") || strings.Contains(msg, "size") || strings.Contains(msg, "large")):
		b.opts.MaxBytes = min(b.opts.MaxBytes, max(1024, pb.Bytes/2))
		b.event(BatchEvent{Kind: "split", Batch: *pb, Text: fmt.Sprintf("files of at most %d bytes from now on", b.opts.MaxBytes)})
	default:
		b.roundRefused = true
		b.event(BatchEvent{Kind: "refused", Batch: *pb, Text: "its requests go into a new batch"})
	}
}

// held returns the requests still running in the batch, by custom_id
// (with bodies only when a budget needs them).
func (b *BatchRunner) held(ctx context.Context, pb *jobs.ProviderBatch) (map[string]jobs.Request, error) {
	byID := map[string]jobs.Request{}
	err := b.st.BatchRequests(ctx, pb.ID, b.budget.active(), func(r jobs.Request) error {
		byID[r.CustomID] = r
		return nil
	})
	return byID, err
}

// recordChunk is how many outcomes go to the store in one transaction.
const recordChunk = 256

// record streams one output or error file and records each line for its
// request; lines of requests no longer held (recorded by an earlier,
// killed collection) are skipped, as Record would ignore them anyway.
func (b *BatchRunner) record(ctx context.Context, pb *jobs.ProviderBatch, fileID string, byID map[string]jobs.Request, tally *lineTally) error {
	rc, err := b.client.fileContent(ctx, fileID)
	if err != nil {
		return err
	}
	defer rc.Close()
	lines := newLineReader(rc, b.client.maxBody)
	var batch []jobs.Outcome
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := b.st.Record(ctx, batch); err != nil {
			return err
		}
		for _, o := range batch {
			tally.add(o)
			b.progress.recorded(pb.Model, o)
		}
		batch = batch[:0]
		return nil
	}
	for {
		line, err := lines.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			// The lines read are taken from byID: record them before a new
			// try reads the file again, or they would be left unanswered.
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("read batch file %s: %w", fileID, b.client.transportError(ctx, err))
		}
		o, ok := b.outcome(pb, line, byID)
		if !ok {
			continue
		}
		batch = append(batch, o)
		if len(batch) == recordChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// newKey names a new batch at the provider.
func newKey(job string) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '_'
	}, job)
	if len(name) > 40 {
		name = name[:40]
	}
	return "llmbatch-" + name + "-" + hex.EncodeToString(r[:]) + ".jsonl"
}

// retryable says whether a failed call to the Batch API may succeed if
// made again: no answer, a timeout, 5xx or 429.
func retryable(err error) bool {
	var ce *CallError
	if !errors.As(err, &ce) {
		return false
	}
	return ce.Class.Disposition() == jobs.Retryable && ce.Class != jobs.ClassBadResponse
}

// maxCallWait caps the wait between two tries of a Batch API call; an
// outage is waited out, however long, as an online run's pause does.
const maxCallWait = time.Minute

// call makes fn, a call to the Batch API, until it succeeds or fails for a
// reason that another try would repeat.
func (b *BatchRunner) call(ctx context.Context, fn func() error) error {
	wait := time.Second
	for {
		err := fn()
		if err == nil || !retryable(err) {
			return err
		}
		b.event(BatchEvent{Kind: "retrying", Text: fmt.Sprintf("%v; trying again in %s", err, wait)})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, maxCallWait)
	}
}

// CancelAll cancels the job's open batches at the provider (a batch a
// killed run may have created is looked for first), waits up to wait for
// the provider to end them, records what they answered before the cancel,
// and returns how many batches are still open (still cancelling).
func (b *BatchRunner) CancelAll(ctx context.Context, wait time.Duration) (int, error) {
	open, err := b.openBatches(ctx)
	if err != nil {
		return 0, err
	}
	var left []jobs.ProviderBatch
	for _, pb := range open {
		if err := b.cancelOne(ctx, &pb); err != nil {
			return len(open), err
		}
		if pb.State.Open() {
			left = append(left, pb)
		}
	}
	deadline := b.opts.Now().Add(wait)
	for {
		if left, err = b.look(ctx, left); err != nil || len(left) == 0 || !b.opts.Now().Before(deadline) {
			return len(left), err
		}
		select {
		case <-ctx.Done():
			return len(left), ctx.Err()
		case <-time.After(min(time.Second, b.opts.Poll)):
		}
	}
}

// cancelOne cancels one open batch: one the provider never got is
// released at once; one it has is asked to cancel.
func (b *BatchRunner) cancelOne(ctx context.Context, pb *jobs.ProviderBatch) error {
	if pb.State == jobs.BatchNew {
		f, found, err := b.client.findFile(ctx, pb.Key)
		if err != nil {
			return err
		}
		if !found {
			return b.release(ctx, pb)
		}
		pb.InputFileID, pb.State = f.ID, jobs.BatchUploaded
	}
	if pb.State == jobs.BatchUploaded {
		bo, found, err := b.client.findBatch(ctx, pb.Key, pb.InputFileID)
		if err != nil {
			return err
		}
		if !found {
			return b.release(ctx, pb)
		}
		pb.BatchID, pb.State = bo.ID, jobs.BatchSubmitted
		b.update(pb, bo)
	}
	if pb.State != jobs.BatchSubmitted {
		return nil // ended: look collects it
	}
	bo, err := b.client.cancelBatch(ctx, pb.BatchID)
	if err != nil {
		// A batch that ended meanwhile cannot be cancelled; look sees it.
		var ae *BatchAPIError
		if !errors.As(err, &ae) {
			return err
		}
		return nil
	}
	b.update(pb, bo)
	return b.st.UpdateBatch(ctx, *pb)
}

// release gives a batch the provider never got its requests back.
func (b *BatchRunner) release(ctx context.Context, pb *jobs.ProviderBatch) error {
	n, err := b.st.CollectBatch(ctx, pb.ID)
	pb.State, pb.Left = jobs.BatchCollected, n
	return err
}
