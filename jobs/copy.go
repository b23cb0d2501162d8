package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// A copy moves one job, with every row it holds, from one database to
// another, whatever their engines: a job started on a laptop (SQLite) is
// handed to a team's database (PostgreSQL), or brought back for an offline
// look. The source reads the job in one snapshot and streams it, a chunk
// of requests at a time, each request with its attempts and its result;
// the target stores it in one transaction, giving the rows ids of its own
// in the same order. Neither side holds the whole job in memory, and the
// source is left as it was.

// ErrJobExists: the database a job is copied to has a job of that name.
var ErrJobExists = errors.New("a job of that name exists")

// JobCopier is implemented by an engine whose jobs can be copied to, and
// from, any other engine that implements it.
type JobCopier interface {
	// DumpJob reads the job in one consistent snapshot (runs writing
	// meanwhile are neither blocked nor seen half-way) and calls fn with it:
	// first a part with the Head, then parts of Requests in input order,
	// a bounded chunk at a time. It changes nothing. It returns ErrNotFound
	// for a missing job, and fn's first error as it is.
	DumpJob(ctx context.Context, jobID int64, fn func(CopyPart) error) error
	// LoadJob stores the job src yields as a new job named as its head's,
	// in one transaction: either all of it or nothing. Requests, attempts
	// and batches get ids of this database, in the order src gives them;
	// everything else is stored as src gives it. A provider batch whose
	// key the database holds already gets the first free CopyKey of it. It
	// returns the job as stored; ErrJobExists (wrapped) when a job of that
	// name exists; and src's errors as they are.
	LoadJob(ctx context.Context, src CopySource) (Job, error)
}

// CopyPart is one call of DumpJob's fn: the head, or a chunk of requests.
// The chunk is the receiver's: DumpJob does not touch it again.
type CopyPart struct {
	Head     *CopyHead
	Requests []CopyRequest
}

// CopySource yields a dumped job to LoadJob.
type CopySource interface {
	// Head is the job's row and its provider batches.
	Head() CopyHead
	// Next returns the next chunk of requests in input order, or io.EOF
	// after the last. Any other error ends the load, which stores nothing.
	Next() ([]CopyRequest, error)
}

// CopyHead is what a copy reads of a job before its requests.
type CopyHead struct {
	// Job is the job's row as the source holds it: a copy keeps every
	// field but ID, Lock and LockHeartbeat (the source's run is not the
	// copy's: the copy has no lock).
	Job Job
	// Batches are the job's provider batches, oldest first, with the
	// source's ids, which the requests' Batch and the ProviderBatch of
	// their attempts and results name.
	Batches []ProviderBatch
}

// CopyRequest is one request as a copy moves it: every column of its row,
// its attempts and its result. The ids in it are the source's.
type CopyRequest struct {
	// Request is the request's row, with its body; Invalid is unused (a
	// line kept invalid is a failed request whose Failure is of
	// ClassInvalidInput, with the message).
	Request Request
	// Failure is the last error kept with the request, nil when there is
	// none. NoStatusCode says its status code is absent (a line kept
	// invalid never had an answer), not 0.
	Failure      *Failure
	NoStatusCode bool
	// Batch is the provider batch the request was last put in, 0 for none.
	Batch int64
	// Attempts are the request's attempts in the order they were stored.
	Attempts []Attempt
	// Result is the request's result, nil when there is none. Cached says
	// it was copied from the cache; HasTTFT that it has a time to first
	// token (it was streamed), even one under a millisecond.
	Result  *Result
	Cached  bool
	HasTTFT bool
}

// Size is about the bytes c holds in memory: what bounds a chunk of a
// dump besides its count.
func (c *CopyRequest) Size() int {
	n := len(c.Request.Body) + len(c.Request.Metadata)
	if c.Failure != nil {
		n += len(c.Failure.Body) + len(c.Failure.Message)
	}
	if c.Result != nil {
		n += len(c.Result.Raw) + len(c.Result.Content) + len(c.Result.ReasoningContent)
	}
	return n
}

// CheckBatches refuses a chunk of a load that names a provider batch
// (as a request's, an attempt's or a result's) the head did not give:
// known holds the head's batches by their ids in the source. Rows naming
// one could not say which batch of the target they belong to.
func CheckBatches(chunk []CopyRequest, known map[int64]int64) error {
	check := func(id int64) error {
		if _, ok := known[id]; id != 0 && !ok {
			return fmt.Errorf("load job: provider batch %d is not the job's", id)
		}
		return nil
	}
	for i := range chunk {
		c := &chunk[i]
		err := check(c.Batch)
		for j := range c.Attempts {
			err = errors.Join(err, check(c.Attempts[j].ProviderBatch))
		}
		if c.Result != nil {
			err = errors.Join(err, check(c.Result.ProviderBatch))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// CopyKey is the n-th other name (n ≥ 1) of a provider batch's key, for a
// copy into a database that holds the key already (the job was copied
// there before): "K-copy.jsonl", then "K-copy2.jsonl", … for "K.jsonl".
func CopyKey(key string, n int) string {
	base, ext := key, ""
	if i := strings.LastIndexByte(key, '.'); i > 0 {
		base, ext = key[:i], key[i:]
	}
	if n == 1 {
		return base + "-copy" + ext
	}
	return fmt.Sprintf("%s-copy%d%s", base, n, ext)
}

// CopyOptions say how Copy copies a job.
type CopyOptions struct {
	// Name is the job's name in the target; "" keeps the source's.
	Name string
	// StaleAfter and Dead decide, as for Store.Lock, whether the run
	// holding the source job's lock is live: a copy of a job that a live
	// run works is refused.
	StaleAfter time.Duration
	Dead       func(LockOwner) bool
	// Now is the clock the lock's heartbeat is compared with; nil is
	// time.Now.
	Now func() time.Time
}

// CopyCounts are the rows a copy moved.
type CopyCounts struct {
	Requests, Attempts, Results, Batches int
	// Invalid counts the requests that are lines kept invalid at import.
	Invalid int
}

// Copy copies the job from one database to another, under opts.Name when
// it is set. It refuses (a *LockedError) a job that a live run works: one
// holding its lock in the snapshot the copy reads, or, on an engine with
// Runners, any live runner. It refuses (ErrJobExists) a name the target
// holds. The dump and the load run side by side, a few chunks apart. An
// engine that is no JobCopier is refused by name.
func Copy(ctx context.Context, from, to Store, job Job, opts CopyOptions) (Job, CopyCounts, error) {
	src, ok := from.(JobCopier)
	if !ok {
		return Job{}, CopyCounts{}, fmt.Errorf("copy: the source engine (%T) cannot copy jobs", from)
	}
	dst, ok := to.(JobCopier)
	if !ok {
		return Job{}, CopyCounts{}, fmt.Errorf("copy: the target engine (%T) cannot copy jobs", to)
	}
	name := opts.Name
	if name == "" {
		name = job.Name
	}
	if err := freeName(ctx, to, name); err != nil {
		return Job{}, CopyCounts{}, err
	}
	if err := liveRunners(ctx, from, job.ID, opts.Dead); err != nil {
		return Job{}, CopyCounts{}, err
	}
	return pipeCopy(ctx, src, dst, job.ID, name, opts)
}

// freeName refuses a name the target holds, before anything is read.
func freeName(ctx context.Context, to Store, name string) error {
	_, err := to.Job(ctx, name)
	switch {
	case err == nil:
		return fmt.Errorf("job %q: %w", name, ErrJobExists)
	case errors.Is(err, ErrNotFound):
		return nil
	}
	return err
}

// liveRunners refuses a job that runs are working now, on an engine with
// Runners: any whose lease is current, unless dead says it is gone.
func liveRunners(ctx context.Context, from Store, jobID int64, dead func(LockOwner) bool) error {
	r, ok := from.(Runners)
	if !ok {
		return nil
	}
	list, err := r.LiveRunners(ctx, jobID)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	for _, run := range list {
		if dead == nil || !dead(run.Owner) {
			return &LockedError{Holder: run.Owner, Heartbeat: run.Heartbeat}
		}
	}
	return nil
}

// liveLock returns a *LockedError when the head's job is locked by a run
// that opts take to be live.
func liveLock(j Job, opts CopyOptions) error {
	if j.Lock.Token == "" {
		return nil
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if now().Sub(j.LockHeartbeat) >= opts.StaleAfter || (opts.Dead != nil && opts.Dead(j.Lock)) {
		return nil
	}
	return &LockedError{Holder: j.Lock, Heartbeat: j.LockHeartbeat}
}

// pipeCopy runs the dump on a goroutine of its own, feeding the load
// through a channel of a few chunks, so that reading one database and
// writing the other overlap in bounded memory.
func pipeCopy(ctx context.Context, src, dst JobCopier, jobID int64, name string, opts CopyOptions) (Job, CopyCounts, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &copyPipe{parts: make(chan CopyPart, 2), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.dumpErr = src.DumpJob(ctx, jobID, func(part CopyPart) error {
			select {
			case p.parts <- part:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		close(p.parts)
	}()
	job, err := p.load(ctx, dst, name, opts)
	cancel()
	for range p.parts { // the dump may be blocked on a send
	}
	<-p.done
	if err != nil {
		return Job{}, CopyCounts{}, err
	}
	return job, p.counts, nil
}

// copyPipe is a dump in progress, as the load's CopySource.
type copyPipe struct {
	parts   chan CopyPart
	done    chan struct{} // closed when the dump has returned
	dumpErr error         // read after parts is closed
	head    CopyHead
	counts  CopyCounts
}

// load reads the head, checks it, and loads the job under name.
func (p *copyPipe) load(ctx context.Context, dst JobCopier, name string, opts CopyOptions) (Job, error) {
	first, ok := <-p.parts
	if !ok {
		return Job{}, p.dumpErr
	}
	if first.Head == nil {
		return Job{}, errors.New("copy: the dump did not start with the job")
	}
	if err := liveLock(first.Head.Job, opts); err != nil {
		return Job{}, err
	}
	p.head = *first.Head
	p.head.Job.Name = name
	p.head.Job.Lock, p.head.Job.LockHeartbeat = LockOwner{}, time.Time{}
	p.counts.Batches = len(p.head.Batches)
	return dst.LoadJob(ctx, p)
}

func (p *copyPipe) Head() CopyHead { return p.head }

func (p *copyPipe) Next() ([]CopyRequest, error) {
	part, ok := <-p.parts
	if !ok {
		<-p.done
		if p.dumpErr != nil {
			return nil, p.dumpErr
		}
		return nil, io.EOF
	}
	if part.Head != nil {
		return nil, errors.New("copy: the dump gave the job twice")
	}
	p.count(part.Requests)
	return part.Requests, nil
}

func (p *copyPipe) count(reqs []CopyRequest) {
	for i := range reqs {
		r := &reqs[i]
		p.counts.Requests++
		p.counts.Attempts += len(r.Attempts)
		if r.Result != nil {
			p.counts.Results++
		}
		if r.Failure != nil && r.Failure.Class == ClassInvalidInput {
			p.counts.Invalid++
		}
	}
}
