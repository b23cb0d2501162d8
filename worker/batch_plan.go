package worker

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/llmbatch/llmbatch/jobs"
)

// plannedFile is an input file being written for one endpoint and model.
type plannedFile struct {
	endpoint jobs.Endpoint
	model    string
	path     string
	w        *lineWriter
	ids      []int64
}

// planner splits pending requests into input files: one endpoint and one
// model per file (some providers refuse a file of several models), each
// within the run's line and byte limits.
type planner struct {
	b     *BatchRunner
	open  map[string]*plannedFile
	done  []*plannedFile
	full  bool // the budget took no more lines
	first bool
}

// plan makes new batches of the job's pending requests (with Fallback,
// of those never tried in the first round and then only of those the
// provider refused) and submits them. The files are written first, then each is stored with its requests,
// uploaded and submitted in turn.
func (b *BatchRunner) plan(ctx context.Context) ([]jobs.ProviderBatch, error) {
	only := b.resubmit
	b.resubmit = map[int64]bool{}
	firstRound := b.rounds == 0
	b.rounds++
	p := &planner{b: b, open: map[string]*plannedFile{}}
	defer p.cleanup()
	err := b.st.PendingRequests(ctx, b.jobID, func(r jobs.Request) error {
		if b.opts.Fallback && !only[r.ID] && (!firstRound || r.Attempts > 0) {
			// With the online fallback, what was tried before (a batch's
			// expired or retryable line, also one a killed run collected)
			// goes online; only refused batches' requests go again.
			return nil
		}
		return p.add(r)
	})
	if err != nil {
		return nil, err
	}
	if err := p.closeAll(); err != nil {
		return nil, err
	}
	var made []jobs.ProviderBatch
	for _, f := range p.done {
		pb, err := b.create(ctx, f)
		if errors.Is(err, jobs.ErrBatchChanged) {
			b.giveBack(f)
			continue // a cancel came between: those requests are no longer ours
		}
		if err != nil {
			return made, err
		}
		made = append(made, pb)
		if err := b.advance(ctx, &made[len(made)-1]); err != nil {
			return made, err
		}
	}
	return made, nil
}

// add puts a request into the file of its endpoint and model, starting a
// new file when it would not fit.
func (p *planner) add(r jobs.Request) error {
	if p.full {
		return nil
	}
	line, err := batchLine(r)
	if err != nil {
		return nil // a body the store keeps can always be sent; never seen
	}
	if !p.b.budget.fitBatch(r.CustomID, r.Model, r.Body) {
		p.full = true
		return nil
	}
	key := string(r.Endpoint) + "\x00" + r.Model
	f := p.open[key]
	if f != nil && (len(f.ids) >= p.b.opts.MaxRequests || f.w.bytes+int64(len(line)) > p.b.opts.MaxBytes) {
		if err := p.finish(key); err != nil {
			return err
		}
		f = nil
	}
	if f == nil {
		if f, err = p.start(r); err != nil {
			return err
		}
		p.open[key] = f
	}
	f.ids = append(f.ids, r.ID)
	f.w.n++
	f.w.bytes += int64(len(line))
	_, err = f.w.w.Write(line)
	return err
}

func (p *planner) start(r jobs.Request) (*plannedFile, error) {
	fh, err := os.CreateTemp(p.b.opts.TempDir, "llmbatch-batch-*.jsonl")
	if err != nil {
		return nil, fmt.Errorf("write batch file: %w", err)
	}
	return &plannedFile{endpoint: r.Endpoint, model: r.Model, path: fh.Name(), w: newLineWriter(fh)}, nil
}

func (p *planner) finish(key string) error {
	f := p.open[key]
	delete(p.open, key)
	p.done = append(p.done, f)
	if err := f.w.close(); err != nil {
		return fmt.Errorf("write batch file: %w", err)
	}
	return nil
}

func (p *planner) closeAll() error {
	for key := range p.open {
		if err := p.finish(key); err != nil {
			return err
		}
	}
	return nil
}

// cleanup removes the files written (each is uploaded by then, or its
// batch will write it again from the store).
func (p *planner) cleanup() {
	for _, f := range p.open {
		f.w.f.Close()
		os.Remove(f.path)
	}
	for _, f := range p.done {
		os.Remove(f.path)
	}
}

// giveBack returns the budget a file reserved but never used.
func (b *BatchRunner) giveBack(f *plannedFile) {
	if !b.budget.active() {
		return
	}
	b.budget.mu.Lock()
	defer b.budget.mu.Unlock()
	// The exact worst cases were not kept; a file refused by the store is
	// rare (a cancel during planning), and the run ends soon after it.
	b.budget.inFlight -= len(f.ids)
}

// create stores the batch of a written file with its requests, then
// uploads the file and submits it.
func (b *BatchRunner) create(ctx context.Context, f *plannedFile) (jobs.ProviderBatch, error) {
	pb := jobs.ProviderBatch{JobID: b.jobID, Key: newKey(b.opts.JobName), Endpoint: f.endpoint, Model: f.model,
		Requests: len(f.ids), Bytes: f.w.bytes}
	pb, err := b.st.CreateBatch(ctx, pb, f.ids)
	if err != nil {
		return pb, err
	}
	var up fileObject
	if err := b.call(ctx, func() (err error) {
		up, err = b.client.uploadFile(ctx, pb.Key, f.path)
		return err
	}); err != nil {
		return pb, err
	}
	pb.InputFileID, pb.State = up.ID, jobs.BatchUploaded
	return pb, b.st.UpdateBatch(ctx, pb)
}
