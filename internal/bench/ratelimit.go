package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/worker"
)

// The rate-limit scenario's own flags; main parses them with the others.
var (
	rlLimit    = flag.Int("ratelimit-rpm", 3000, "requests a minute the fake of the ratelimit scenario accepts (more are answered 429)")
	rlDuration = flag.Duration("ratelimit-duration", time.Minute, "how long each run of the ratelimit scenario lasts")
	rlLatency  = flag.Duration("ratelimit-latency", 0, "server latency of the ratelimit scenario")
)

func init() {
	register(Scenario{
		Name: "ratelimit",
		Doc:  "a fake answering 429 above 3,000 requests/minute, 60 s with --rpm 3000, then 60 s without: 429 share and throughput",
		Run:  runRateLimit,
	})
}

// Targets of issue 4 for a run with --rpm at the provider's limit.
const (
	rlMaxShare      = 0.01
	rlMinThroughput = 0.95
)

// rlResult is what one timed run against the limited fake did.
type rlResult struct {
	served, calls, limited int64
	// settledCalls and settledLimited leave out the first tenth of the
	// run, while the adaptive controller learns the limit.
	settledCalls, settledLimited int64
	conc                         int
	learnedRPM                   int
}

func (r rlResult) share() float64 { return float64(r.limited) / float64(max(1, r.calls)) }

func (r rlResult) settledShare() float64 {
	return float64(r.settledLimited) / float64(max(1, r.settledCalls))
}

func runRateLimit(ctx context.Context, e *Env) error {
	limit, d := *rlLimit, *rlDuration
	e.note("fake: token bucket of %s requests/minute holding one second's worth (%d), 429 with Retry-After/retry-after-ms above it; server latency %s; concurrency %d",
		thousands(float64(limit)), max(1, limit/60), *rlLatency, e.cfg.concurrency)
	perMinute := func(n int64) float64 { return float64(n) / d.Minutes() }
	for _, tt := range []struct {
		label string
		rpm   int
	}{{fmt.Sprintf("--rpm %d", limit), limit}, {"no --rpm (adaptive)", 0}} {
		res, err := rateLimitRun(ctx, e, limit, tt.rpm, d)
		if err != nil {
			return fmt.Errorf("%s: %w", tt.label, err)
		}
		rate := perMinute(res.served) / float64(limit)
		e.note("%s: %s requests answered in %s, %s calls, %s answered 429; effective concurrency at the end %d, learned rate %s rpm",
			tt.label, thousands(float64(res.served)), d, thousands(float64(res.calls)), thousands(float64(res.limited)),
			res.conc, thousands(float64(res.learnedRPM)))
		value := fmt.Sprintf("%s req/min (%.1f %% of the limit)", thousands(perMinute(res.served)), 100*rate)
		share := fmt.Sprintf("%.2f %% (%.2f %% after the first %s)", 100*res.share(), 100*res.settledShare(), d/10)
		if tt.rpm > 0 {
			e.figure(tt.label+": throughput", value, "≥ 95 % of the limit", rate >= rlMinThroughput)
			e.figure(tt.label+": attempts answered 429", share, "≤ 1 %", res.share() <= rlMaxShare)
		} else {
			e.figure(tt.label+": throughput", value, "", false)
			e.figure(tt.label+": attempts answered 429", share, "", false)
		}
	}
	return nil
}

// rateLimitRun works a job larger than d allows against a fake limited to
// limit requests a minute, with --rpm rpm (0: none), stops it after d and
// counts what the fake did.
func rateLimitRun(ctx context.Context, e *Env, limit, rpm int, d time.Duration) (rlResult, error) {
	n := int(float64(limit)*d.Minutes()*1.5) + 100
	file, err := e.input(n)
	if err != nil {
		return rlResult{}, err
	}
	st, job, err := importFresh(ctx, e, "ratelimit", file)
	if err != nil {
		return rlResult{}, err
	}
	defer st.Close()
	lim := fakeapi.NewLimiter(fakeapi.Limit{Requests: limit})
	fake := fakeapi.New(fakeapi.Config{Key: benchKey, Latency: *rlLatency, Script: lim.Script(nil)})
	defer fake.Close()
	conc := e.cfg.concurrency
	client := worker.NewClient(worker.ClientOptions{BaseURL: fake.URL(), APIKey: benchKey, Timeout: time.Minute, Conns: conc})
	runner := worker.New(st, job.ID, client, worker.Options{Concurrency: conc, MaxAttempts: 100, RPM: rpm})
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()

	var res rlResult
	early, err := sleepOrDone(ctx, fake, done, d/10)
	if err != nil {
		return res, err
	}
	late, err := sleepOrDone(ctx, fake, done, d-d/10)
	if err != nil {
		return res, err
	}
	state := runner.State()
	runner.Stop()
	if err := <-done; err != nil && !errors.Is(err, jobs.ErrInterrupted) {
		return res, err
	}
	res.served, res.calls, res.limited = late.Served, late.Calls, late.Status[429]
	res.settledCalls, res.settledLimited = late.Calls-early.Calls, late.Status[429]-early.Status[429]
	res.conc, res.learnedRPM = state.Concurrency, state.AdaptiveRPM
	return res, nil
}

// sleepOrDone waits d, then returns the fake's counts; a run that ends
// first is an error (the job is sized to outlast d).
func sleepOrDone(ctx context.Context, fake *fakeapi.Server, done <-chan error, d time.Duration) (fakeapi.Stats, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return fake.Stats(), nil
	case err := <-done:
		return fakeapi.Stats{}, fmt.Errorf("the run ended before %s: %v", d, err)
	case <-ctx.Done():
		return fakeapi.Stats{}, ctx.Err()
	}
}
