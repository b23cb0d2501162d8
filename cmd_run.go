package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store"
	"github.com/llmbatch/llmbatch/worker"
	"github.com/urfave/cli/v2"
)

// Lock timing: a live run renews its heartbeat every lockBeat; a lock not
// renewed for lockStale belongs to a run that is gone.
const (
	lockBeat  = 5 * time.Second
	lockStale = 30 * time.Second
)

// runOptions are the flags of the run command.
type runOptions struct {
	importOptions
	BaseURL           string
	APIKey            string
	AllowInsecureHTTP bool
	Concurrency       int
	RPM, TPM          int
	MaxAttempts       int
	Timeout           time.Duration
	DrainTimeout      time.Duration
	RetryDelay        time.Duration
	MaxRetryDelay     time.Duration
	MaxResponseBytes  int64
	Stream            bool
	StallTimeout      time.Duration
	// LogInterval is how often the progress line is logged when stderr is
	// not a terminal; Quiet silences it (progress.go).
	LogInterval time.Duration
	Quiet       bool
	// NoColor ($NO_COLOR set, not empty) takes the colour out of the bar.
	NoColor bool
	// MaxTokens and MaxCost are the job's budgets, 0 for none; MaxCost is
	// in the prices' currency and needs a price for every model.
	MaxTokens int64
	MaxCost   float64
	// Prices price the cost in the progress line; empty means none shown.
	Prices jobs.Prices
}

func (o runOptions) Validate() error {
	if err := o.importOptions.Validate(); err != nil {
		return err
	}
	switch {
	case o.APIKey == "":
		return withCode(exitError, errors.New("no API key: set OPENAI_API_KEY or pass --api-key-file"))
	case o.Concurrency < 1:
		return withCode(exitError, errors.New("--concurrency must be at least 1"))
	case o.RPM < 0 || o.TPM < 0:
		return withCode(exitError, errors.New("--rpm and --tpm must be 0 (no limit) or more"))
	case o.MaxAttempts < 1:
		return withCode(exitError, errors.New("--max-attempts must be at least 1"))
	case o.MaxTokens < 0 || o.MaxCost < 0 || math.IsNaN(o.MaxCost) || math.IsInf(o.MaxCost, 0):
		return withCode(exitError, errors.New("--max-tokens and --max-cost must be 0 (no budget) or more"))
	case o.MaxCost > 0 && len(o.Prices.ByModel) == 0:
		return withCode(exitError, errors.New("--max-cost needs the price of every model the job asks for: give --price MODEL=IN:OUT or --prices FILE"))
	case o.LogInterval <= 0:
		return withCode(exitError, errors.New("--log-interval must be positive"))
	case o.Timeout <= 0 || o.DrainTimeout < 0 || o.RetryDelay <= 0 || o.MaxRetryDelay < o.RetryDelay || o.StallTimeout <= 0:
		return withCode(exitError, errors.New("--timeout, --stall-timeout and --retry-delay must be positive, --max-retry-delay at least --retry-delay"))
	}
	return checkBaseURL(o.BaseURL, o.AllowInsecureHTTP)
}

// checkBaseURL refuses a plain-HTTP URL to anything but loopback, which
// would send the key in clear text.
func checkBaseURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return withCode(exitError, fmt.Errorf("--base-url %q is not an http(s) URL", raw))
	}
	if u.User != nil {
		return withCode(exitError, errors.New("--base-url must not contain credentials; use OPENAI_API_KEY"))
	}
	if u.Scheme == "http" && !allowInsecure && !isLoopback(u.Hostname()) {
		return withCode(exitError, fmt.Errorf("--base-url %q is plain HTTP to another host and would send the API key in clear text; use https, or pass --allow-insecure-http", raw))
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runCommand(env func(string) string, stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "import FILE as a job (or continue the job of that name) and process it to the end",
		ArgsUsage: "FILE|JOB",
		Description: `Example:
   export OPENAI_API_KEY=...
   llmbatch run --model deepseek/deepseek-v3 --concurrency 32 prompts.jsonl
   llmbatch run prompts          # continue the job named "prompts"
   llmbatch run --dry-run --rpm 500 --price deepseek/deepseek-v3=0.27:1.10 prompts.jsonl
   llmbatch run --price deepseek/deepseek-v3=0.27:1.10 --currency USD --max-cost 20 prompts.jsonl`,
		Flags: append(append(append([]cli.Flag{}, importFlags...), priceFlags()...),
			dryRunFlag,
			&cli.StringFlag{Name: "base-url", Usage: "OpenAI-compatible API `URL` (default $OPENAI_BASE_URL, else " + DefaultBaseURL + ")"},
			&cli.StringFlag{Name: "api-key-file", Usage: "read the API key from `FILE` instead of $OPENAI_API_KEY"},
			&cli.BoolFlag{Name: "allow-insecure-http", Usage: "allow a plain-http --base-url to a host other than loopback"},
			&cli.IntFlag{Name: "concurrency", Value: 16, Usage: "requests in flight at most (the adaptive controller may use fewer while the provider pushes back)"},
			&cli.IntFlag{Name: "rpm", Usage: "send at most `N` requests a minute (0: no limit)"},
			&cli.IntFlag{Name: "tpm", Usage: "send at most `N` tokens a minute, estimated before sending and reconciled with the usage reported (0: no limit)"},
			&cli.IntFlag{Name: "max-attempts", Value: 8, Usage: "attempts per request before it fails"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "time limit of one attempt"},
			&cli.DurationFlag{Name: "drain-timeout", Value: 30 * time.Second, Usage: "after Ctrl-C, how long requests in flight may finish"},
			&cli.DurationFlag{Name: "retry-delay", Value: time.Second, Usage: "wait after a first retryable error; doubles each attempt"},
			&cli.DurationFlag{Name: "max-retry-delay", Value: time.Minute, Usage: "longest wait between attempts (a server's Retry-After may ask for more)"},
			&cli.Int64Flag{Name: "max-response-bytes", Value: worker.DefaultMaxResponseBytes, Usage: "largest response body read"},
			&cli.BoolFlag{Name: "stream", Usage: `send every request as a stream ("stream": true, with usage); lines may also set "stream": true themselves`},
			&cli.DurationFlag{Name: "stall-timeout", Value: worker.DefaultStallTimeout, Usage: "retry a stream that sends no token for this long (keep-alives do not count)"},
			&cli.DurationFlag{Name: "log-interval", Value: 30 * time.Second, Usage: "when stderr is not a terminal, log a progress line this often (on a terminal the line is redrawn every second)"},
			&cli.Int64Flag{Name: "max-tokens", Usage: "token budget of the job, `N` tokens over all its runs (0: none); a request is sent only if its worst case (estimated prompt + max_tokens × n) fits, else the run finishes what is in flight and exits 5"},
			&cli.Float64Flag{Name: "max-cost", Usage: "cost budget of the job, `AMOUNT` in the prices' currency over all its runs (0: none; needs --price or --prices for every model); a request is sent only if its worst case fits, else the run finishes what is in flight and exits 5"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print no progress line"},
		),
		Action: func(c *cli.Context) error {
			if c.Bool("dry-run") {
				limits := dryRunLimits{RPM: c.Int("rpm"), TPM: c.Int("tpm"), Concurrency: c.Int("concurrency")}
				return runDryRun(importOptionsFrom(c, env), priceOptionsFrom(c), limits, stdout)
			}
			opts, err := runOptionsFrom(c, env)
			if err != nil {
				return err
			}
			return runJob(c.Context, opts, stdout, stderr)
		},
	}
}

func runOptionsFrom(c *cli.Context, env func(string) string) (runOptions, error) {
	o := runOptions{
		importOptions:     importOptionsFrom(c, env),
		BaseURL:           c.String("base-url"),
		AllowInsecureHTTP: c.Bool("allow-insecure-http"),
		Concurrency:       c.Int("concurrency"),
		RPM:               c.Int("rpm"),
		TPM:               c.Int("tpm"),
		MaxAttempts:       c.Int("max-attempts"),
		Timeout:           c.Duration("timeout"),
		DrainTimeout:      c.Duration("drain-timeout"),
		RetryDelay:        c.Duration("retry-delay"),
		MaxRetryDelay:     c.Duration("max-retry-delay"),
		MaxResponseBytes:  c.Int64("max-response-bytes"),
		Stream:            c.Bool("stream"),
		StallTimeout:      c.Duration("stall-timeout"),
		LogInterval:       c.Duration("log-interval"),
		Quiet:             c.Bool("quiet"),
		NoColor:           env("NO_COLOR") != "",
		MaxTokens:         c.Int64("max-tokens"),
		MaxCost:           c.Float64("max-cost"),
	}
	prices, err := priceOptionsFrom(c).load()
	if err != nil {
		return o, withCode(exitError, err)
	}
	o.Prices = prices
	if o.BaseURL == "" {
		o.BaseURL = env("OPENAI_BASE_URL")
	}
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	o.APIKey = env("OPENAI_API_KEY")
	if f := c.String("api-key-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return o, withCode(exitError, fmt.Errorf("--api-key-file: %w", err))
		}
		o.APIKey = strings.TrimSpace(string(b))
	}
	return o, nil
}

// runJob imports or finds the job, takes its lock, recovers the orphans of
// a dead run and works the job until it ends, handling signals: the first
// stops claiming and drains, the second (or the drain timeout) cancels.
func runJob(ctx context.Context, opts runOptions, stdout, stderr io.Writer) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	st, err := store.Open(ctx, opts.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	job, imported, err := openJob(ctx, st, opts.importOptions, true)
	if err != nil {
		return err
	}
	if job.State == jobs.JobCancelled {
		return withCode(exitError, fmt.Errorf("job %q was cancelled; its results stay exportable; to run the file again, import it under a new --job name", job.Name))
	}
	if imported {
		fmt.Fprintf(stderr, "llmbatch: job %s: imported %d requests from %s\n", job.Name, job.Total, job.Source)
	}
	owner := newOwner()
	if err := st.Lock(ctx, job.ID, owner, lockStale, ownerDead); errors.Is(err, jobs.ErrLocked) {
		return withCode(exitError, fmt.Errorf("job %q: %w; wait for that run to end or stop it (a killed run's lock is taken over after %s)", job.Name, err, lockStale))
	} else if err != nil {
		return cannotWrite(job, err) // not another run: a full or read-only disk
	}
	defer st.Unlock(context.WithoutCancel(ctx), job.ID, owner)
	if n, err := st.Recover(ctx, job.ID); err != nil {
		return cannotWrite(job, err)
	} else if n > 0 {
		fmt.Fprintf(stderr, "llmbatch: job %s: %d requests left running by an earlier run go back to pending\n", job.Name, n)
	}
	cache, err := startCachePass(ctx, st, job, opts.importOptions)
	if err != nil {
		return cannotWrite(job, err)
	}
	runErr := work(ctx, st, job, owner, cache, opts, stderr)
	if err := cache.stop(stderr); err != nil && runErr == nil {
		runErr = err
	}
	return finish(ctx, st, job, runErr, stderr)
}

// cannotWrite is the error of a run that stopped before its work because
// the database could not be written (a full or read-only disk).
func cannotWrite(job jobs.Job, err error) error {
	return withCode(exitError, fmt.Errorf("job %s: %w; results committed so far are kept; run `llmbatch run %s` to continue once fixed", job.Name, err, job.Name))
}

// work runs the job's requests with the signal handling and heartbeat of a
// live run.
func work(ctx context.Context, st *store.Store, job jobs.Job, owner jobs.LockOwner, cache *cachePass, opts runOptions, stderr io.Writer) error {
	client := worker.NewClient(worker.ClientOptions{BaseURL: opts.BaseURL, APIKey: opts.APIKey,
		Timeout: opts.Timeout, Conns: opts.Concurrency, MaxResponseBytes: opts.MaxResponseBytes,
		Stream: opts.Stream, StallTimeout: opts.StallTimeout})
	// What the job did before this run, as of now: the counts at once, the
	// usage (a pass over every result) only when a budget needs it before
	// the first request, else beside the run, for the progress display.
	sum, err := st.BeginSummary(ctx, job.ID)
	if err != nil {
		return err
	}
	defer sum.Close()
	cache.resume(ctx) // what it answers from now on is not in the summary
	before := sync.OnceValues(func() (jobs.Stats, error) { return sum.Finish(ctx) })
	budget, err := runBudget(ctx, st, job, opts, before)
	if err != nil {
		return err
	}
	runner := worker.New(st, job.ID, client, worker.Options{Concurrency: opts.Concurrency, RPM: opts.RPM, TPM: opts.TPM,
		MaxAttempts: opts.MaxAttempts, Retry: worker.RetryPolicy{Initial: opts.RetryDelay, Max: opts.MaxRetryDelay},
		Budget: budget})
	hard, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := &messageWriter{w: stderr} // through the progress bar while it is drawn
	stopSignals := handleSignals(runner, cancel, opts.DrainTimeout, msgs)
	defer stopSignals()
	lost := make(chan error, 1)
	go heartbeat(hard, st, job.ID, owner, runner, lost)
	if opts.Quiet {
		// Nothing will read the usage: end the read transaction now (one
		// left open would keep the WAL from being checkpointed all run).
		sum.Close()
	} else {
		stopProgress := afterward(before, func(stats jobs.Stats) func() {
			meter := newProgressMeter(stats, opts.Prices, time.Now())
			// Requests the cache pass answers beside the run are done too.
			snap := func() worker.Progress {
				p := runner.Progress()
				p.Succeeded += cache.answeredBeside()
				return p
			}
			return startProgress(ctx, meter, snap, progressOptions{LogInterval: opts.LogInterval,
				NoColor: opts.NoColor, Messages: msgs}, stderr)
		})
		defer stopProgress()
	}
	err = runner.Run(hard)
	select {
	case lerr := <-lost:
		return fmt.Errorf("job %q: %w: another run took the job over; this run stopped", job.Name, lerr)
	default:
		return err
	}
}

// runBudget is the run's budget: the limits, and what the job spent before
// this run. A cost budget needs a price for every model the job's open
// requests ask for.
func runBudget(ctx context.Context, st *store.Store, job jobs.Job, opts runOptions, before func() (jobs.Stats, error)) (worker.Budget, error) {
	b := worker.Budget{MaxTokens: opts.MaxTokens, MaxCost: opts.MaxCost, Prices: opts.Prices}
	if b.MaxTokens == 0 && b.MaxCost == 0 {
		return b, nil
	}
	if b.MaxCost > 0 {
		models, err := st.OpenModels(ctx, job.ID)
		if err != nil {
			return b, err
		}
		for _, m := range models {
			if _, ok := opts.Prices.ByModel[m]; !ok {
				return b, withCode(exitError, fmt.Errorf("--max-cost: no price for model %q, which job %s asks for; give one with --price %s=IN:OUT or --prices FILE", m, job.Name, m))
			}
		}
	}
	stats, err := before()
	if err != nil {
		return b, err
	}
	b.SpentTokens = stats.Usage.TotalTokens
	for _, m := range stats.Models {
		if c, ok := opts.Prices.Cost(m.Model, m.Usage); ok {
			b.SpentCost += c
		}
	}
	return b, nil
}

// afterward calls start with what before returns, on a goroutine of its
// own, unless before fails; the function it returns stops what start
// started, once before is done.
func afterward(before func() (jobs.Stats, error), start func(jobs.Stats) (stop func())) (stop func()) {
	var stopStarted func()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if stats, err := before(); err == nil {
			stopStarted = start(stats)
		}
	}()
	return func() {
		<-done
		if stopStarted != nil {
			stopStarted()
		}
	}
}

// handleSignals makes the first SIGINT/SIGTERM stop claiming and start the
// drain clock, and the second cancel at once.
func handleSignals(runner *worker.Runner, cancel context.CancelFunc, drain time.Duration, stderr io.Writer) func() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		fmt.Fprintf(stderr, "llmbatch: stopping: no new requests; waiting up to %s for those in flight (signal again to stop at once)\n", drain)
		runner.Stop()
		t := time.NewTimer(drain)
		defer t.Stop()
		select {
		case <-sigs:
		case <-t.C:
		case <-done:
			return
		}
		cancel()
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

func heartbeat(ctx context.Context, st *store.Store, jobID int64, owner jobs.LockOwner, runner *worker.Runner, lost chan<- error) {
	t := time.NewTicker(lockBeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := st.Heartbeat(ctx, jobID, owner); errors.Is(err, jobs.ErrLockLost) {
			lost <- err
			runner.Stop()
			return
		}
	}
}

// finish prints the run's summary and turns its end into the exit code.
func finish(ctx context.Context, st *store.Store, job jobs.Job, runErr error, stderr io.Writer) error {
	stats, err := st.Stats(context.WithoutCancel(ctx), job.ID)
	if err != nil {
		return errors.Join(runErr, err)
	}
	c := stats.Counts
	fmt.Fprintf(stderr, "llmbatch: job %s: %d succeeded, %d failed, %d cancelled, %d pending of %d; %d attempts; tokens %s\n",
		job.Name, c[jobs.StatusSucceeded], c[jobs.StatusFailed], c[jobs.StatusCancelled],
		c[jobs.StatusPending]+c[jobs.StatusRunning], job.Total, stats.Attempts, tokenSummary(stats.Usage))
	var fe *worker.FatalError
	var be *worker.BudgetError
	switch {
	case errors.As(runErr, &be) && be.NoPrice != "":
		return withCode(exitError, fmt.Errorf("%w; nothing is lost: run `llmbatch run %s` again with a price for it", be, job.Name))
	case errors.As(runErr, &be):
		return withCode(exitBudget, fmt.Errorf("%w; nothing is lost: raise %s and run `llmbatch run %s` again to continue", be, be.Flag, job.Name))
	case errors.As(runErr, &fe):
		return withCode(exitFatalAPI, fmt.Errorf("stopped: %w; %s; then run `llmbatch run %s` to continue", fe, fatalHint(fe.Failure.Class), job.Name))
	case errors.Is(runErr, jobs.ErrInterrupted):
		return withCode(exitInterrupted, fmt.Errorf("interrupted; run `llmbatch run %s` to continue", job.Name))
	case runErr != nil:
		return withCode(exitError, fmt.Errorf("job %s stopped: %w; results committed so far are kept; run `llmbatch run %s` to continue once fixed", job.Name, runErr, job.Name))
	case c[jobs.StatusFailed]+c[jobs.StatusCancelled] > 0:
		return withCode(exitSomeFailed, fmt.Errorf("job %s finished, but %d requests failed and %d were cancelled; see `llmbatch export %s --errors FILE`",
			job.Name, c[jobs.StatusFailed], c[jobs.StatusCancelled], job.Name))
	}
	return nil
}

func fatalHint(c jobs.ErrorClass) string {
	if c == jobs.ClassPayment {
		return "top up the account's balance"
	}
	if c == jobs.ClassTLS {
		return "check the host name in --base-url, or add the server's certificate authority to the system's trust store (or name a CA bundle with SSL_CERT_FILE)"
	}
	return "check the API key (OPENAI_API_KEY or --api-key-file) and its permissions"
}

func tokenSummary(u jobs.Usage) string {
	if !u.Known {
		return "unknown"
	}
	return fmt.Sprintf("%d prompt + %d completion (%d reasoning) = %d", u.PromptTokens, u.CompletionTokens, u.ReasoningTokens, u.TotalTokens)
}

func newOwner() jobs.LockOwner {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	host, _ := os.Hostname()
	return jobs.LockOwner{Token: hex.EncodeToString(b), PID: os.Getpid(), Host: host}
}

// ownerDead reports whether a lock holder on this host no longer runs.
func ownerDead(o jobs.LockOwner) bool {
	host, _ := os.Hostname()
	if o.Host != host || o.PID <= 0 {
		return false
	}
	err := syscall.Kill(o.PID, 0)
	return errors.Is(err, syscall.ESRCH)
}
