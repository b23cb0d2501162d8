package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	"github.com/llmbatch/llmbatch/worker"
)

// The modes of run --mode.
const (
	modeOnline = "online"
	modeBatch  = "batch"
)

// batchOptions are run's flags of batch mode.
type batchOptions struct {
	Mode           string
	MaxRequests    int
	MaxBytes       int64
	Poll           time.Duration
	Detach         bool
	OnlineFallback bool
	// BaseURL is the Batch API's base URL when it is not the job's (the
	// provider serves /files and /batches elsewhere); Window the
	// completion_window asked for.
	BaseURL string
	Window  string
}

func (o batchOptions) Validate() error {
	switch {
	case (o.Mode == "" || o.Mode == modeOnline) && (o.Detach || o.OnlineFallback):
		return errors.New("--detach and --online-fallback are for --mode batch")
	case o.Mode == "" || o.Mode == modeOnline:
		return nil
	case o.Mode != modeBatch:
		return fmt.Errorf("--mode %q: want online or batch", o.Mode)
	case o.MaxRequests < 1 || o.MaxBytes < 1024:
		return errors.New("--batch-max-requests must be at least 1 and --batch-max-bytes at least 1024")
	case o.Poll <= 0:
		return errors.New("--batch-poll must be positive")
	case o.BaseURL != "" && checkBaseURL(o.BaseURL, true) != nil:
		return fmt.Errorf("--batch-base-url %q is not an http(s) URL", o.BaseURL)
	case o.Detach && o.OnlineFallback:
		return errors.New("--detach leaves the batches with the provider; --online-fallback needs the run to wait for them: give one of the two")
	}
	return nil
}

// batchFlags are run's flags of batch mode.
var batchFlags = []urfave.Flag{
	&urfave.StringFlag{Name: "mode", Value: modeOnline, Usage: "online: send each request as it comes; batch: through the provider's Batch API (/files, /batches), about half price, answers within 24 h"},
	&urfave.IntFlag{Name: "batch-max-requests", Value: worker.DefaultBatchMaxRequests, Usage: "--mode batch: requests per input file at most"},
	&urfave.Int64Flag{Name: "batch-max-bytes", Value: worker.DefaultBatchMaxBytes, Usage: "--mode batch: bytes per input file at most"},
	&urfave.DurationFlag{Name: "batch-poll", Value: worker.DefaultBatchPoll, Usage: "--mode batch: how often the provider's batches are looked at"},
	&urfave.BoolFlag{Name: "detach", Usage: "--mode batch: submit the batches and exit 0; a later `run JOB` (any mode) collects them"},
	&urfave.StringFlag{Name: "batch-base-url", Usage: "--mode batch: base `URL` of the provider's /files and /batches when it is not the job's base URL (Novita: https://api.novita.ai/openai/v1)"},
	&urfave.StringFlag{Name: "batch-window", Value: worker.DefaultBatchWindow, Usage: "--mode batch: the completion_window asked for (OpenAI: 24h; Novita/PPIO accept only 48h)"},
	&urfave.BoolFlag{Name: "online-fallback", Usage: "--mode batch: send online, in the same run, what the batches left unanswered (expired lines, retryable errors)"},
}

func batchOptionsFrom(c *urfave.Context) batchOptions {
	return batchOptions{Mode: c.String("mode"), MaxRequests: c.Int("batch-max-requests"), MaxBytes: c.Int64("batch-max-bytes"),
		Poll: c.Duration("batch-poll"), Detach: c.Bool("detach"), OnlineFallback: c.Bool("online-fallback"),
		BaseURL: c.String("batch-base-url"), Window: c.String("batch-window")}
}

// errDetached ends a run that left its batches with the provider.
var errDetached = errors.New("detached")

// batchPhase sends the job through the provider's Batch API (--mode
// batch), or, in online mode, finishes what batches earlier runs left:
// submits what a killed run had not, and records the batches that ended.
// It reports whether the online run should follow.
func batchPhase(ctx context.Context, st jobs.Store, job jobs.Job, client *worker.Client, opts runOptions, send sending,
	stop *switchStop, msgs *output.MessageWriter, stderr io.Writer) (bool, error) {
	batch := opts.Batch.Mode == modeBatch
	if !batch {
		open, err := hasOpenBatches(ctx, st, job.ID)
		if err != nil || !open {
			return true, err
		}
	}
	budget, err := runBudget(ctx, st, job, opts, func() (jobs.Stats, error) { return st.Stats(ctx, job.ID) })
	if err != nil {
		return false, err
	}
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop.set(cancel) // a cancelled job or a lost lock ends the batch phase
	defer stop.set(func() {})
	if send.BatchBaseURL != send.BaseURL {
		if err := checkBaseURL(send.BatchBaseURL, opts.AllowInsecureHTTP); err != nil {
			return false, fmt.Errorf("batch base URL: %w", err)
		}
		client = client.WithBaseURL(send.BatchBaseURL)
	}
	br := worker.NewBatchRunner(st, job.ID, client, worker.BatchOptions{JobName: job.Name, Window: opts.Batch.Window,
		MaxRequests: opts.Batch.MaxRequests, MaxBytes: opts.Batch.MaxBytes, Poll: opts.Batch.Poll,
		Fallback: opts.Batch.OnlineFallback, Detach: opts.Batch.Detach, CollectOnly: !batch,
		MaxAttempts: opts.MaxAttempts, Budget: budget, Event: batchEvents(job, opts, msgs)})
	if !opts.Quiet {
		stats, err := st.Stats(ctx, job.ID)
		if err != nil {
			return false, err
		}
		meter := output.NewProgressMeter(stats, budget.Prices, time.Now())
		stopProgress := output.StartProgress(ctx, meter, br.Progress, output.ProgressOptions{LogInterval: opts.LogInterval,
			NoColor: opts.NoColor, Messages: msgs}, stderr)
		defer stopProgress()
	}
	err = br.Run(ctx)
	switch {
	case err != nil && ctx.Err() != nil:
		return false, jobs.ErrInterrupted
	case err != nil:
		var ae *worker.BatchAPIError
		if errors.As(err, &ae) && ae.NotServed() {
			return false, fmt.Errorf("%w: the server has no Batch API (BASE/files, BASE/batches); run the job with --mode online", err)
		}
		return false, err
	case !batch:
		return true, nil
	case opts.Batch.Detach:
		return false, errDetached
	}
	return opts.Batch.OnlineFallback, nil
}

func hasOpenBatches(ctx context.Context, st jobs.Store, jobID int64) (bool, error) {
	all, err := st.Batches(ctx, jobID)
	if err != nil {
		return false, err
	}
	for _, b := range all {
		if b.State.Open() {
			return true, nil
		}
	}
	return false, nil
}

// batchEvents prints what the batch runner does as log lines.
func batchEvents(job jobs.Job, opts runOptions, stderr io.Writer) func(worker.BatchEvent) {
	return func(e worker.BatchEvent) {
		if opts.Quiet && e.Kind != "refused" && e.Kind != "split" {
			return
		}
		if line := output.BatchEventLine(job.Name, e.Kind, e.Batch, e.Left, e.Text); line != "" {
			fmt.Fprintln(stderr, line)
		}
	}
}

// cancelWait is how long cancel waits for the provider to end the job's
// batches, to record what they answered before the cancel.
const cancelWait = 30 * time.Second

// cancelBatches cancels the job's open provider batches (a cancelled job
// sends nothing more) and records what they answered; a batch still
// cancelling after cancelWait is collected by a later run or cancel.
func cancelBatches(ctx context.Context, st jobs.Store, job jobs.Job, env func(string) string, db string, stdout io.Writer) error {
	open, err := hasOpenBatches(ctx, st, job.ID)
	if err != nil || !open {
		return err
	}
	base := firstOf(job.Settings.BatchBaseURL, job.Settings.BaseURL, env("OPENAI_BASE_URL"), DefaultBaseURL)
	key := env("OPENAI_API_KEY")
	if key == "" && !loopbackURL(base) {
		fmt.Fprintf(stdout, "job %s: its provider batches at %s are not cancelled: set OPENAI_API_KEY and run cancel again (or cancel them in the provider's console)\n", job.Name, base)
		return nil
	}
	client := worker.NewClient(worker.ClientOptions{BaseURL: base, APIKey: key, Timeout: time.Minute, Conns: 1,
		MaxResponseBytes: worker.DefaultMaxResponseBytes})
	br := worker.NewBatchRunner(st, job.ID, client, worker.BatchOptions{JobName: job.Name, Poll: time.Second})
	left, err := br.CancelAll(ctx, cancelWait)
	if err != nil {
		return fmt.Errorf("job %s: cancel its provider batches: %w", job.Name, err)
	}
	if left > 0 {
		fmt.Fprintf(stdout, "job %s: %d provider batches still cancelling; `%s` again records what they answered once they end\n",
			job.Name, left, command(importOptions{DB: db}, "cancel", job.Name))
		return nil
	}
	fmt.Fprintf(stdout, "job %s: its provider batches are cancelled; what they answered before is recorded\n", job.Name)
	return nil
}
