package jobs

import (
	"context"
	"errors"
	"time"
)

// ErrBatchChanged: a request meant for a provider batch was no longer
// pending (a cancel came first); nothing was stored.
var ErrBatchChanged = errors.New("a request of the batch is no longer pending")

// BatchState is where a provider batch is in its life as llmbatch keeps it.
// Each state says what a run that finds it must do next, so that a run
// killed at any point goes on from there and never pays for a line twice.
type BatchState string

// The states of a provider batch, in the order it goes through them.
const (
	// BatchNew: its requests are marked as its own; the input file is not
	// known to be uploaded (a run killed during the upload left it here: the
	// next looks for a file of the batch's Key at the provider first).
	BatchNew BatchState = "new"
	// BatchUploaded: the input file's id is known; the batch is not known to
	// be created (the next run looks for a batch of that file first).
	BatchUploaded BatchState = "uploaded"
	// BatchSubmitted: the provider's batch id is known; it is polled.
	BatchSubmitted BatchState = "submitted"
	// BatchEnded: the provider's batch reached a final status; its output
	// and error files are being recorded.
	BatchEnded BatchState = "ended"
	// BatchCollected: every line it answered is recorded and what it left
	// unanswered went back to pending. Final.
	BatchCollected BatchState = "collected"
)

// Open says whether the batch still holds requests of its own: they are
// running, and nothing but collecting the batch may change them.
func (s BatchState) Open() bool { return s != BatchCollected }

// BatchCounts are the provider's request_counts of a batch.
type BatchCounts struct {
	Total     int `json:"total"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
}

// ProviderBatch is one input file of a job's requests sent through a
// provider's Batch API (POST /files, POST /batches).
type ProviderBatch struct {
	ID    int64
	JobID int64
	// Key names the batch at the provider: the uploaded file's name and the
	// batch's metadata "llmbatch_key", by which a run that lost the answer
	// to an upload or a create finds the file or the batch again.
	Key      string
	Endpoint Endpoint
	Model    string
	// Requests and Bytes are the size of its input file.
	Requests int
	Bytes    int64
	State    BatchState
	// The provider's ids: empty until known.
	InputFileID, BatchID, OutputFileID, ErrorFileID string
	// ProviderStatus is the provider's status of the batch: validating,
	// in_progress, finalizing, completed, failed, expired, cancelling or
	// cancelled; empty before it was created.
	ProviderStatus string
	Counts         BatchCounts
	// Message is the provider's word on a batch that failed (its errors).
	Message string
	// Left counts the requests that went back to pending when it was
	// collected (unanswered: expired, failed or cancelled batch).
	Left                 int
	CreatedAt, UpdatedAt time.Time
}

// ProviderBatches keeps a job's provider batches and the requests each
// holds. A request in an open batch is running and belongs to it: Claim
// never returns it, Recover, Cancel and CancelLeftovers leave it alone, and
// only Record (of its answer) and CollectBatch move it. Record applies an
// outcome of a batch (its Attempt's or Result's ProviderBatch set) only
// while the request is running in that batch and the batch is open: a
// line of a batch collected since (its request put back, maybe claimed
// online) or of another batch is ignored, as a second answer is.
type ProviderBatches interface {
	// CreateBatch stores b (it returns it with ID, State BatchNew and the
	// times set) and moves the requests ids, all pending requests of b's
	// active job, to running in the batch, in one transaction. When one of
	// them is not pending, or the job is not active, nothing is stored and
	// the error matches ErrBatchChanged. No ids, or one named twice, is
	// the caller's mistake: an error that does not match it.
	CreateBatch(ctx context.Context, b ProviderBatch, ids []int64) (ProviderBatch, error)
	// UpdateBatch stores b's state, provider ids, provider status, counts
	// and message (and UpdatedAt = now). Only CollectBatch collects a
	// batch: b's state BatchCollected is refused (ErrBadTransition) unless
	// the batch is collected already, and a collected batch stays
	// collected whatever b's state. A missing batch is ErrNotFound.
	UpdateBatch(ctx context.Context, b ProviderBatch) error
	// Batches lists the job's provider batches, oldest first.
	Batches(ctx context.Context, jobID int64) ([]ProviderBatch, error)
	// BatchRequests calls fn, in id order, for each request still running
	// in the open batch, with its body when bodies is set (Request.Body nil
	// otherwise). It returns fn's first error.
	BatchRequests(ctx context.Context, batchID int64, bodies bool, fn func(Request) error) error
	// PendingRequests calls fn, in id order, for each pending request of
	// the job, with its body, whatever its not-before time. It returns fn's
	// first error.
	PendingRequests(ctx context.Context, jobID int64, fn func(Request) error) error
	// CollectBatch marks the batch collected and moves its requests still
	// running in it back to pending, due now, without using an attempt; it
	// returns how many (also stored as Left). Collecting a collected batch
	// changes nothing and returns 0; a missing batch is ErrNotFound.
	CollectBatch(ctx context.Context, batchID int64) (int, error)
}
