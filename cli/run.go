package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	"github.com/llmbatch/llmbatch/worker"
	urfave "github.com/urfave/cli/v2"
)

// runOptions are the flags of the run command.
type runOptions struct {
	importOptions
	// BaseURL is --base-url as given ("" when not), BaseURLEnv
	// $OPENAI_BASE_URL; the run's URL is resolved with the job's stored one
	// (see baseURL).
	BaseURL, BaseURLEnv string
	// StandIn is set by the demo: its stand-in listens on a new port each
	// time, so a changed base URL is not news and is not said.
	StandIn bool
	APIKey  string
	// KeyFile is --api-key-file, when the key came from it.
	KeyFile           string
	AllowInsecureHTTP bool
	Concurrency       int
	MinConcurrency    int
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
	// not a terminal, and how often the errors since the last count are
	// counted; Quiet silences both, and the first error of each class.
	LogInterval time.Duration
	Quiet       bool
	// Verbose prints every failed attempt as it ends, --quiet or not.
	Verbose bool
	// NoColor ($NO_COLOR set, not empty) takes the colour out of the bar.
	NoColor bool
	// MaxTokens and MaxCost are the job's budgets, 0 for none; MaxCost is
	// in the prices' currency and needs a price for every model.
	MaxTokens int64
	MaxCost   float64
	// MaxTokensGiven and MaxCostGiven say the command line gave them; a
	// run that gives none keeps the job's stored budgets.
	MaxTokensGiven, MaxCostGiven bool
	// Prices price the cost in the progress line and the cost budget,
	// merged over the job's stored prices; empty means none shown.
	// PricesGiven says the command line gave some (--price, --prices or
	// --currency), which the job then stores.
	Prices      jobs.Prices
	PricesGiven bool
	// Batch is how --mode batch sends the job.
	Batch batchOptions
	// Lease is how long the run's claim on the job (SQLite: its lock;
	// PostgreSQL: the leases of its requests) outlives its last heartbeat.
	Lease time.Duration
	// Cache shapes the cache pass (hidden flags, for tests).
	Cache cacheOptions
	// Resume, if not empty, is the command that continues the job, for
	// the messages of how a run ended: the demo's own, which restarts its
	// stand-in for the provider. Else `llmbatch run JOB`.
	Resume string
	// Profiles are $LLMBATCH_CPUPROFILE and $LLMBATCH_MEMPROFILE: files
	// to write the run's CPU profile and its allocations to, for
	// BENCHMARKS.md's profiles of the real binary.
	Profiles profileFiles
}

func (o runOptions) Validate() error {
	if err := o.importOptions.Validate(); err != nil {
		return err
	}
	if err := o.Batch.Validate(); err != nil {
		return err
	}
	switch {
	case o.Concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case o.MinConcurrency < 0 || o.MinConcurrency > o.Concurrency:
		return errors.New("--min-concurrency must be between 1 and --concurrency (0: a quarter of it)")
	case o.RPM < 0 || o.TPM < 0:
		return errors.New("--rpm and --tpm must be 0 (no limit) or more")
	case o.MaxAttempts < 1:
		return errors.New("--max-attempts must be at least 1")
	case o.MaxTokens < 0 || o.MaxCost < 0 || math.IsNaN(o.MaxCost) || math.IsInf(o.MaxCost, 0):
		return errors.New("--max-tokens and --max-cost must be 0 (no budget) or more")
	case o.LogInterval <= 0:
		return errors.New("--log-interval must be positive")
	case o.Lease != 0 && o.Lease < time.Second:
		return errors.New("--lease must be at least 1s")
	case o.Timeout <= 0 || o.DrainTimeout < 0 || o.RetryDelay <= 0 || o.MaxRetryDelay < o.RetryDelay || o.StallTimeout <= 0:
		return errors.New("--timeout, --stall-timeout and --retry-delay must be positive, --max-retry-delay at least --retry-delay")
	case o.BaseURL != "":
		return checkBaseURL(o.BaseURL, o.AllowInsecureHTTP)
	}
	return nil
}

// checkSending checks what a run needs to send, once its base URL is
// known: an http(s) URL, and a key unless the server is on loopback
// (local servers such as vLLM or llama.cpp need none).
func (o runOptions) checkSending(base string) error {
	if err := checkBaseURL(base, o.AllowInsecureHTTP); err != nil {
		return err
	}
	if o.APIKey == "" && !loopbackURL(base) {
		return fmt.Errorf("no API key for %s: set OPENAI_API_KEY or pass --api-key-file (a server on loopback needs none)", base)
	}
	if o.MaxCost > 0 && len(o.Prices.ByModel) == 0 {
		return errors.New("--max-cost needs the price of every model the job asks for: give --price MODEL=IN:OUT (MODEL=IN for embeddings) or --prices FILE")
	}
	return nil
}

// loopbackURL reports whether raw names a host on this machine.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && isLoopback(u.Hostname())
}

// checkBaseURL refuses a plain-HTTP URL to anything but loopback, which
// would send the key in clear text.
func checkBaseURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("--base-url %q is not an http(s) URL", raw)
	}
	if u.User != nil {
		return errors.New("--base-url must not contain credentials; use OPENAI_API_KEY")
	}
	if u.Scheme == "http" && !allowInsecure && !isLoopback(u.Hostname()) {
		return fmt.Errorf("--base-url %q is plain HTTP to another host and would send the API key in clear text; use https, or pass --allow-insecure-http", raw)
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

func runCommand(env func(string) string, stdin io.Reader, stdout, stderr io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:      "run",
		Usage:     "import FILE as a job (or continue the job of that name) and process it to the end",
		ArgsUsage: "FILE|JOB",
		Description: `Example:
   export OPENAI_API_KEY=...
   llmbatch run --model deepseek/deepseek-v3 --concurrency 32 prompts.jsonl
   llmbatch run prompts          # continue the job named "prompts"
   llmbatch run --dry-run --rpm 500 --price deepseek/deepseek-v3=0.27:1.10 prompts.jsonl
   llmbatch run --price deepseek/deepseek-v3=0.27:1.10 --currency USD --max-cost 20 prompts.jsonl`,
		Flags: append(append(append(append([]urfave.Flag{}, importFlags...), priceFlags()...), batchFlags...),
			dryRunFlag,
			&urfave.StringFlag{Name: "base-url", Usage: "OpenAI-compatible API `URL`; stored with the job, which later runs use (default: the job's, else $OPENAI_BASE_URL, else " + DefaultBaseURL + ")"},
			&urfave.StringFlag{Name: "api-key-file", Usage: "read the API key from `FILE` instead of $OPENAI_API_KEY"},
			&urfave.BoolFlag{Name: "allow-insecure-http", Usage: "allow a plain-http --base-url to a host other than loopback"},
			&urfave.IntFlag{Name: "concurrency", Value: 16, Usage: "requests in flight at most (the adaptive controller may use fewer while the provider pushes back)"},
			&urfave.IntFlag{Name: "min-concurrency", Usage: "the fewest requests in flight the adaptive controller goes down to (default: a quarter of --concurrency)"},
			&urfave.IntFlag{Name: "rpm", Usage: "send at most `N` requests a minute (0: no limit)"},
			&urfave.IntFlag{Name: "tpm", Usage: "send at most `N` tokens a minute, estimated before sending and reconciled with the usage reported (0: no limit)"},
			&urfave.IntFlag{Name: "max-attempts", Value: 8, Usage: "attempts per request before it fails"},
			&urfave.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "time limit of one attempt"},
			&urfave.DurationFlag{Name: "drain-timeout", Value: 30 * time.Second, Usage: "after Ctrl-C, how long requests in flight may finish"},
			&urfave.DurationFlag{Name: "retry-delay", Value: time.Second, Usage: "wait after a first retryable error; doubles each attempt"},
			&urfave.DurationFlag{Name: "max-retry-delay", Value: time.Minute, Usage: "longest wait between attempts (a server's Retry-After may ask for more)"},
			&urfave.Int64Flag{Name: "max-response-bytes", Value: worker.DefaultMaxResponseBytes, Usage: "largest response body read"},
			&urfave.BoolFlag{Name: "stream", Usage: `send every request as a stream ("stream": true, with usage); stored with the job; lines may also set "stream": true themselves`},
			&urfave.DurationFlag{Name: "stall-timeout", Value: worker.DefaultStallTimeout, Usage: "retry a stream that sends no token for this long (keep-alives do not count)"},
			&urfave.DurationFlag{Name: "log-interval", Value: 30 * time.Second, Usage: "when stderr is not a terminal, log a progress line this often (on a terminal the bar is redrawn every second); on both, count the failed attempts of each error class this often (the first of each is printed at once)"},
			&urfave.Int64Flag{Name: "max-tokens", Usage: "token budget of the job, `N` tokens over all its runs (0: none); a request is sent only if its worst case (estimated prompt + max_tokens × n) fits, else the run finishes what is in flight and exits 5"},
			&urfave.Float64Flag{Name: "max-cost", Usage: "cost budget of the job, `AMOUNT` in the prices' currency over all its runs (0: none; needs --price or --prices for every model); a request is sent only if its worst case fits, else the run finishes what is in flight and exits 5"},
			&urfave.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print no progress and no error counts"},
			&urfave.BoolFlag{Name: "verbose", Usage: "print every failed attempt as it ends: custom_id, attempt, status code, class, message, and what becomes of the request (even with --quiet)"},
			&urfave.DurationFlag{Name: "lease", Value: lockStale, Usage: "how long the run's claim outlives its last heartbeat: a killed run's lock (SQLite), or the requests a lost runner held, which other runners then take over (PostgreSQL)"},
			&urfave.DurationFlag{Name: "cache-lead", Value: defaultCacheOptions.Lead, Hidden: true},
			&urfave.IntFlag{Name: "cache-chunk", Value: defaultCacheOptions.Chunk, Hidden: true},
		),
		Action: func(c *urfave.Context) error {
			if c.Bool("dry-run") {
				limits := output.PlanLimits{RPM: c.Int("rpm"), TPM: c.Int("tpm"), Concurrency: c.Int("concurrency"),
					Batch: c.String("mode") == modeBatch}
				if err := batchOptionsFrom(c).Validate(); err != nil {
					return err
				}
				return runDryRun(withStdin(importOptionsFrom(c, env), stdin), priceOptionsFrom(c), limits, batchOptionsFrom(c), stdout)
			}
			opts, err := runOptionsFrom(c, env)
			if err != nil {
				return err
			}
			opts.Stdin = stdin
			return runJob(c.Context, opts, stdout, stderr)
		},
	}
}

func runOptionsFrom(c *urfave.Context, env func(string) string) (runOptions, error) {
	o := runOptions{
		importOptions:     importOptionsFrom(c, env),
		BaseURL:           c.String("base-url"),
		BaseURLEnv:        env("OPENAI_BASE_URL"),
		AllowInsecureHTTP: c.Bool("allow-insecure-http"),
		Concurrency:       c.Int("concurrency"),
		MinConcurrency:    c.Int("min-concurrency"),
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
		Verbose:           c.Bool("verbose"),
		NoColor:           env("NO_COLOR") != "",
		MaxTokens:         c.Int64("max-tokens"),
		MaxCost:           c.Float64("max-cost"),
		MaxTokensGiven:    c.IsSet("max-tokens"),
		MaxCostGiven:      c.IsSet("max-cost"),
		PricesGiven:       c.IsSet("price") || c.IsSet("prices") || c.IsSet("currency") || c.IsSet("batch-discount"),
		Batch:             batchOptionsFrom(c),
		Lease:             c.Duration("lease"),
		Cache:             cacheOptions{Lead: c.Duration("cache-lead"), Chunk: max(1, c.Int("cache-chunk"))},
	}
	prices, err := priceOptionsFrom(c).load()
	if err != nil {
		return o, err
	}
	o.Prices = prices
	o.Profiles = profileFiles{CPU: env("LLMBATCH_CPUPROFILE"), Mem: env("LLMBATCH_MEMPROFILE")}
	o.APIKey = env("OPENAI_API_KEY")
	if f := c.String("api-key-file"); f != "" {
		if o.APIKey, err = readKeyFile(f); err != nil {
			return o, err
		}
		o.KeyFile = f
	}
	return o, nil
}

// readKeyFile reads the API key from the first line of file.
func readKeyFile(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--api-key-file: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("--api-key-file %s is empty", file)
	}
	return key, nil
}

// runJob imports or finds the job, takes its lock, recovers the orphans of
// a dead run and works the job until it ends, handling signals: the first
// stops claiming and drains, the second (or the drain timeout) cancels.
func runJob(ctx context.Context, opts runOptions, stdout, stderr io.Writer) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	opts.Settings = opts.newSettings()
	stopProfiles, err := opts.Profiles.start()
	if err != nil {
		return err
	}
	defer stopProfiles()
	return withInputJob(ctx, opts.importOptions, true, func(st jobs.Store, in importOptions, job jobs.Job, imported bool) error {
		opts.importOptions = in
		if job.State == jobs.JobCancelled {
			return cancelledJob(ctx, st, job, in, stderr)
		}
		if imported {
			fmt.Fprintf(stderr, "llmbatch: job %s: imported %s from %s\n", job.Name, output.Plural(job.Total, "request"), job.Source)
		}
		return sendJob(ctx, st, job, opts, stderr)
	})
}

// profileFiles name the profiles a run writes, "" for none.
type profileFiles struct{ CPU, Mem string }

// start starts the CPU profile; the function it returns ends it and
// writes the allocations.
func (p profileFiles) start() (func(), error) {
	stopCPU := func() {}
	if p.CPU != "" {
		f, err := os.Create(p.CPU)
		if err != nil {
			return nil, fmt.Errorf("LLMBATCH_CPUPROFILE: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("LLMBATCH_CPUPROFILE: %w", err)
		}
		stopCPU = func() {
			pprof.StopCPUProfile()
			f.Close()
		}
	}
	if p.Mem == "" {
		return stopCPU, nil
	}
	return func() {
		stopCPU()
		if f, err := os.Create(p.Mem); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}, nil
}

// sendJob resolves how the job's requests are sent and works it.
func sendJob(ctx context.Context, st jobs.Store, job jobs.Job, opts runOptions, stderr io.Writer) error {
	send, err := resolveSending(ctx, st, &job, opts, stderr)
	if err != nil {
		return err
	}
	opts.Prices, opts.MaxTokens, opts.MaxCost = send.Prices, send.MaxTokens, send.MaxCost
	if err := opts.checkSending(send.BaseURL); err != nil {
		return err
	}
	if opts.PricesGiven {
		if err := warnUnusedPrices(ctx, st, job, send.Prices, stderr); err != nil {
			return err
		}
	}
	return runLocked(ctx, st, job, opts, send, stderr)
}

// runLocked works the job under its lock, and stores how the run ended.
func runLocked(ctx context.Context, st jobs.Store, job jobs.Job, opts runOptions, send sending, stderr io.Writer) error {
	owner := newOwner()
	if err := st.Lock(ctx, job.ID, owner, opts.lease(), ownerDead); errors.Is(err, jobs.ErrLocked) {
		return fmt.Errorf("job %q: %w; wait for that run to end or stop it (a killed run's lock is taken over after %s)", job.Name, err, opts.lease())
	} else if err != nil {
		return cannotWrite(opts.importOptions, job, err) // not another run: a full or read-only disk
	}
	defer st.Unlock(context.WithoutCancel(ctx), job.ID, owner)
	// The run is live from now on, for status, though the runner saves its
	// own state only once it starts.
	_ = st.SaveRunState(ctx, job.ID, jobs.RunState{Concurrency: opts.Concurrency, MaxConcurrency: opts.Concurrency,
		RPM: opts.RPM, TPM: opts.TPM, UpdatedAt: time.Now()})
	defer clearRunState(context.WithoutCancel(ctx), st, job.ID)
	if n, err := st.Recover(ctx, job.ID); err != nil {
		return cannotWrite(opts.importOptions, job, err)
	} else if n > 0 {
		fmt.Fprintf(stderr, "llmbatch: job %s: %s left running by an earlier run go back to pending\n", job.Name, output.Plural(n, "request"))
	}
	if err := sayWaits(ctx, st, job, stderr); err != nil {
		return err
	}
	cache, err := startCachePass(ctx, st, job, opts.Cache, opts.Dataset.NoCache)
	if err != nil {
		return cannotWrite(opts.importOptions, job, err)
	}
	runErr := work(ctx, st, job, owner, cache, opts, send, stderr)
	if err := cache.stop(stderr); err != nil && runErr == nil {
		runErr = err
	}
	return finish(ctx, st, job, opts.importOptions, opts.resume(job), runErr, stderr)
}

// sayWaits says when the first request is due, when every pending one
// waits on a backoff (a resume after failures): the run would otherwise
// seem to hang.
func sayWaits(ctx context.Context, st jobs.Store, job jobs.Job, stderr io.Writer) error {
	n, next, err := st.Waiting(ctx, job.ID)
	if err != nil {
		return err
	}
	if d := time.Until(next); n > 0 && d > time.Second {
		fmt.Fprintf(stderr, "llmbatch: job %s: all %s wait on a backoff; the first is due at %s (in %s)\n",
			job.Name, output.Plural(n, "pending request"), next.Format("15:04:05"), d.Round(time.Second))
	}
	return nil
}

// cancelledJob refuses to run a cancelled job. What a run killed after the
// cancel left pending is cancelled now, when no run holds the job.
func cancelledJob(ctx context.Context, st jobs.Store, job jobs.Job, o importOptions, stderr io.Writer) error {
	owner := newOwner()
	if err := st.Lock(ctx, job.ID, owner, lockStale, ownerDead); err == nil {
		n, err := st.CancelLeftovers(ctx, job.ID)
		st.Unlock(context.WithoutCancel(ctx), job.ID, owner)
		if err != nil {
			return cannotWrite(o, job, err)
		}
		if n > 0 {
			fmt.Fprintf(stderr, "llmbatch: job %s: %s left pending by a run after the cancel are cancelled now\n", job.Name, output.Plural(n, "request"))
		}
	}
	if open, err := hasOpenBatches(ctx, st, job.ID); err == nil && open {
		fmt.Fprintf(stderr, "llmbatch: job %s: its provider batches are still open; `%s` cancels them and records what they answered\n",
			job.Name, command(o, "cancel", job.Name))
	}
	return fmt.Errorf("job %q was cancelled; its results stay exportable (%s); to run the file again, import it under a new --job name",
		job.Name, command(o, "export", job.Name, "--errors", "FILE"))
}

// work runs the job's requests with the signal handling and heartbeat of a
// live run.
func work(ctx context.Context, st jobs.Store, job jobs.Job, owner jobs.LockOwner, cache *cachePass, opts runOptions, send sending, stderr io.Writer) error {
	client := worker.NewClient(worker.ClientOptions{BaseURL: send.BaseURL, APIKey: opts.APIKey,
		Timeout: opts.Timeout, Conns: opts.Concurrency, MaxResponseBytes: opts.MaxResponseBytes,
		Stream: send.Stream, StallTimeout: opts.StallTimeout})
	msgs := output.NewMessageWriter(stderr) // through the progress bar while it is drawn
	hard, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := &switchStop{}
	lost := make(chan error, 1)
	go heartbeat(hard, st, job.ID, owner, beatOf(opts.lease()), stop, lost, msgs)
	// The provider's batches first (--mode batch, or those earlier runs
	// left): what they record is then in the summary below.
	online, err := batchPhase(hard, st, job, client, opts, send, stop, msgs, stderr)
	if err != nil || !online {
		return lostOr(job, lost, err)
	}
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
	// An endpoint that answered this job before is not a wrong URL: a
	// run that meets no answer at first pauses as in an outage.
	// (Answers copied from the cache say nothing of the endpoint.)
	counts := sum.Counts()
	reached := !send.URLChanged && counts.Counts[jobs.StatusSucceeded] > counts.Cached
	wopts := worker.Options{Concurrency: opts.Concurrency, MinConcurrency: opts.MinConcurrency,
		RPM: opts.RPM, TPM: opts.TPM, MaxAttempts: opts.MaxAttempts,
		Retry:  worker.RetryPolicy{Initial: opts.RetryDelay, Max: opts.MaxRetryDelay},
		Budget: budget, BaseURL: send.BaseURL, Reached: reached}
	if shared, ok := st.(jobs.SharedLimits); ok {
		wopts.Shared = shared // --rpm, --tpm and the budgets are the job's, whatever runs share it
	}
	var closeAttempts func()
	wopts.OnFailure, closeAttempts = attemptLog(opts, job, msgs)
	defer closeAttempts()
	runner := worker.New(st, job.ID, client, wopts)
	stop.set(runner.Stop)
	stopSignals := handleSignals(runner, cancel, opts.DrainTimeout, msgs)
	defer stopSignals()
	if opts.Quiet {
		// Nothing will read the usage: end the read transaction now (one
		// left open would keep the WAL from being checkpointed all run).
		sum.Close()
	} else {
		stopProgress := afterward(before, func(stats jobs.Stats) func() {
			meter := output.NewProgressMeter(stats, opts.Prices, time.Now())
			// Requests the cache pass answers beside the run are done too.
			snap := func() jobs.Progress {
				p := runner.Progress()
				p.Succeeded += cache.answeredBeside()
				return p
			}
			return output.StartProgress(ctx, meter, snap, output.ProgressOptions{LogInterval: opts.LogInterval,
				NoColor: opts.NoColor, Messages: msgs}, stderr)
		})
		defer stopProgress()
	}
	err = runner.Run(hard)
	closeAttempts() // before the progress stops, so that its lines are above the bar's last frame
	return lostOr(job, lost, err)
}

// lostOr is the run's error: a lost lock if the heartbeat lost it (or a
// write failed for that reason), else err.
func lostOr(job jobs.Job, lost <-chan error, err error) error {
	select {
	case lerr := <-lost:
		return lostLock{fmt.Errorf("job %q: %w: another run took the job over; this run stopped", job.Name, lerr)}
	default:
	}
	if errors.Is(err, jobs.ErrLockLost) {
		return lostLock{fmt.Errorf("job %q: %w: another run took the job over; this run stopped", job.Name, err)}
	}
	return err
}

// lostLock is a run that lost its claim on the job: another run took it
// over (SQLite), or its leases lapsed while it was stopped or cut off and
// the other runners took its requests (PostgreSQL). Nothing is to be fixed
// and nothing was lost.
type lostLock struct{ error }

func (e lostLock) Unwrap() error { return e.error }

// clearRunState forgets the run's pacing, unless other runs share the job
// and still work it (their state is the job's now).
func clearRunState(ctx context.Context, st jobs.Store, jobID int64) {
	if r, ok := st.(jobs.Runners); ok {
		if live, err := r.LiveRunners(ctx, jobID); err == nil && len(live) > 1 {
			return
		}
	}
	_ = st.ClearRunState(ctx, jobID)
}

// attemptLog starts run --verbose's line for each failed attempt, to msgs:
// the runner's callback, and the function that writes the lines queued and
// stops (safe to call twice). Without --verbose, nothing.
func attemptLog(opts runOptions, job jobs.Job, msgs io.Writer) (onFailure func(jobs.Outcome), stop func()) {
	if !opts.Verbose {
		return nil, func() {}
	}
	l := output.NewAttemptLog(msgs, job.Name)
	return l.Add, sync.OnceFunc(l.Close)
}

// runBudget is the run's budget: the limits, and what the job spent before
// this run. A cost budget needs a price for every model the job's open
// requests ask for.
func runBudget(ctx context.Context, st jobs.Store, job jobs.Job, opts runOptions, before func() (jobs.Stats, error)) (worker.Budget, error) {
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
				return b, fmt.Errorf("--max-cost: no price for model %q, which job %s asks for; give one with --price %s=IN:OUT or --prices FILE", m, job.Name, m)
			}
		}
	}
	stats, err := before()
	if err != nil {
		return b, err
	}
	b.SpentTokens = stats.Usage.TotalTokens
	for _, m := range stats.Models {
		if c, ok := opts.Prices.ModelCost(m); ok {
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

// resume is the command that continues job after a run that stopped.
// lease is the run's --lease, lockStale when none was given.
func (o runOptions) lease() time.Duration {
	if o.Lease == 0 {
		return lockStale
	}
	return o.Lease
}

func (o runOptions) resume(job jobs.Job) string {
	if o.Resume != "" {
		return o.Resume
	}
	args := []string{"run", job.Name}
	if o.Batch.Mode == modeBatch {
		args = append(args, "--mode", modeBatch)
		if o.Batch.OnlineFallback {
			args = append(args, "--online-fallback")
		}
	}
	return command(o.importOptions, args...)
}

// finish prints the run's summary, stores how the run ended, and turns its
// end into the exit code; resume is the command that continues the job.
func finish(ctx context.Context, st jobs.Store, job jobs.Job, o importOptions, resume string, runErr error, stderr io.Writer) error {
	ctx = context.WithoutCancel(ctx)
	cancelled := false
	if cur, err := st.Job(ctx, job.Name); err == nil && cur.State == jobs.JobCancelled {
		// What the run put back after the cancel (retries, requests
		// claimed and never sent) is cancelled too.
		cancelled = true
		if _, err := st.CancelLeftovers(ctx, job.ID); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	stats, err := summary(ctx, st, job.ID)
	if err != nil {
		return errors.Join(runErr, err)
	}
	c := stats.Counts
	fmt.Fprintf(stderr, "llmbatch: job %s: %d succeeded, %d failed, %d cancelled, %d pending of %d; %s; tokens %s\n",
		job.Name, c[jobs.StatusSucceeded], c[jobs.StatusFailed], c[jobs.StatusCancelled],
		c[jobs.StatusPending]+c[jobs.StatusRunning], job.Total, output.Plural(stats.Attempts, "attempt"), tokenSummary(stats))
	if stats.InBatches > 0 && (runErr == nil || errors.Is(runErr, errDetached)) {
		fmt.Fprintf(stderr, "llmbatch: job %s: %s still with the provider in batches; `%s` collects them when they end (any --mode)\n",
			job.Name, output.Plural(stats.InBatches, "request"), resume)
		runErr = errDetached
	}
	end, err := runEnd(job, o, resume, runErr, cancelled, c)
	if serr := st.EndRun(ctx, job.ID, end, endMessage(err), time.Now()); serr != nil && err == nil {
		err = cannotWrite(o, job, serr)
	}
	return err
}

// summary reads what the summary line prints: the counts, the usage and
// the attempts, not the quantiles and windows of a full Stats, which take
// several times as long on a large job and would delay the exit.
func summary(ctx context.Context, st jobs.Store, jobID int64) (jobs.Stats, error) {
	sum, err := st.BeginSummary(ctx, jobID)
	if err != nil {
		return jobs.Stats{}, err
	}
	if err := sum.CountAttempts(ctx); err != nil {
		sum.Close()
		return jobs.Stats{}, err
	}
	return sum.Finish(ctx)
}

// runEnd says how the run ended, and the error that exit code and message
// come from (nil when every request succeeded).
func runEnd(job jobs.Job, o importOptions, resume string, runErr error, cancelled bool, c map[jobs.Status]int) (jobs.RunEnd, error) {
	var fe *worker.FatalError
	var be *worker.BudgetError
	var ue *worker.UnreachableError
	switch {
	case errors.As(runErr, &be) && be.NoPrice != "":
		return jobs.EndBudget, fmt.Errorf("%w; nothing is lost: run `%s` again with a price for it", be, resume)
	case errors.As(runErr, &be):
		return jobs.EndBudget, fmt.Errorf("%w; nothing is lost: raise %s and run `%s` again to continue", be, be.Flag, resume)
	case errors.As(runErr, &fe):
		return jobs.EndFatal, fmt.Errorf("stopped: %w; %s; then run `%s` to continue", fe, fatalHint(fe.Failure.Class), resume)
	case errors.As(runErr, &ue) && ue.Class == jobs.ClassTLS:
		return jobs.EndUnreachable, fmt.Errorf("job %s: %w; nothing was used up: %s; then run `%s`",
			job.Name, ue, fatalHint(jobs.ClassTLS), resume)
	case errors.As(runErr, &ue):
		return jobs.EndUnreachable, fmt.Errorf("job %s: %w; nothing was used up: check --base-url "+
			"(requests go to BASE/chat/completions, BASE/completions or BASE/embeddings; the job stores the URL it was given) and that the server runs, then run `%s`",
			job.Name, ue, resume)
	case cancelled:
		return jobs.EndCancelled, someFailedError{fmt.Errorf("job %s was cancelled: %s succeeded, %d failed, %d cancelled; see `%s`",
			job.Name, output.Plural(c[jobs.StatusSucceeded], "request"), c[jobs.StatusFailed], c[jobs.StatusCancelled],
			command(o, "export", job.Name, "--errors", "FILE"))}
	case errors.As(runErr, new(lostLock)):
		return jobs.EndError, fmt.Errorf("%w; its results committed so far are kept, and what it held is the other runs' now (it was stopped or cut off for longer than --lease); `%s` joins again", runErr, resume)
	case errors.Is(runErr, errDetached):
		return jobs.EndDetached, nil
	case errors.Is(runErr, jobs.ErrInterrupted):
		return jobs.EndInterrupted, fmt.Errorf("%w; run `%s` to continue", jobs.ErrInterrupted, resume)
	case runErr != nil:
		return jobs.EndError, fmt.Errorf("job %s stopped: %w; results committed so far are kept; run `%s` to continue once fixed", job.Name, runErr, resume)
	case c[jobs.StatusFailed]+c[jobs.StatusCancelled] > 0:
		return jobs.EndFinished, someFailedError{fmt.Errorf("job %s finished, but %s failed and %d cancelled; see `%s`",
			job.Name, output.Plural(c[jobs.StatusFailed], "request"), c[jobs.StatusCancelled], command(o, "export", job.Name, "--errors", "FILE"))}
	}
	return jobs.EndFinished, nil
}

// endMessage is the message status shows with how the last run ended.
func endMessage(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// tokenSummary is the job's tokens, marked as a lower bound when some
// results reported no usage.
func tokenSummary(stats jobs.Stats) string {
	u := stats.Usage
	if !u.Known {
		return "unknown"
	}
	s := fmt.Sprintf("%d prompt + %d completion (%d reasoning) = %d", u.PromptTokens, u.CompletionTokens, u.ReasoningTokens, u.TotalTokens)
	if n := stats.ResultsWithoutUsage; n > 0 {
		s = fmt.Sprintf("at least %s (%s reported no usage)", s, output.Plural(n, "result"))
	}
	return s
}
