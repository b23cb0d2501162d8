package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmbatch/llmbatch/input"
	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/sqlite"
	"github.com/llmbatch/llmbatch/worker"
)

// benchKey is the API key the fake expects; it is a fake's key, not a secret.
const benchKey = "sk-bench"

func init() {
	register(Scenario{
		Name: "dispatch",
		Doc:  "completed requests/s at zero latency: llmbatch (in-process runner, store on disk) vs a minimal client",
		Run:  runDispatch,
	})
	register(Scenario{
		Name: "latency",
		Doc:  "requests/s with a slow server, against the ideal concurrency/latency",
		Run:  runLatency,
	})
}

// runResult is one timed run of n requests.
type runResult struct {
	n    int
	wall time.Duration
	cpu  time.Duration // of the whole process, fake server included
	// commits and outcomes are the runner's group-commit counts.
	commits, outcomes int
	queue             string // where the store's time went
}

func (r runResult) rate() float64 { return perSecond(r.n, r.wall) }

// cpuPer1k is CPU-seconds per 1,000 requests.
func (r runResult) cpuPer1k() float64 { return r.cpu.Seconds() * 1000 / float64(r.n) }

func runDispatch(ctx context.Context, e *Env) error {
	n, conc := e.cfg.dispatchN, e.cfg.concurrency
	e.note("%s chat requests, concurrency %d, zero-latency fake server in this process", thousands(float64(n)), conc)
	c, err := compare(ctx, e, n, 0, profiles{cpu: e.cfg.cpuprofile, mem: e.cfg.memprofile})
	if err != nil {
		return err
	}
	minimal, llm := c.pick(e.cfg.best)
	e.figure("minimal client (no persistence)", fmt.Sprintf("%s req/s", thousands(minimal.rate)), "", false)
	e.figure("  CPU per 1,000 requests", fmt.Sprintf("%.3f CPU-s", minimal.cpuPer1k), "", false)
	e.figure("llmbatch (import → store → runner)", fmt.Sprintf("%s req/s", thousands(llm.rate)), "", false)
	e.figure("  CPU per 1,000 requests", fmt.Sprintf("%.3f CPU-s", llm.cpuPer1k), "", false)
	ratio := c.ratio(e.cfg.best)
	e.figure("llmbatch / minimal client", fmt.Sprintf("%.2f× (rounds %s)", ratio, c.ratios()), "≥ 0.70×", ratio >= 0.7)
	e.note("%s; CPU is this process's (getrusage), the fake server's share included in both", c.how(e.cfg.best))
	e.note("group commit: %s outcomes in %s transactions (%.0f per commit)",
		thousands(float64(llm.outcomes)), thousands(float64(llm.commits)), float64(llm.outcomes)/float64(max(1, llm.commits)))
	e.note("store: %s", llm.queue)
	return nil
}

func runLatency(ctx context.Context, e *Env) error {
	n, conc, lat := e.cfg.latencyN, e.cfg.concurrency, e.cfg.latency
	ideal := float64(conc) / lat.Seconds()
	e.note("%s chat requests, concurrency %d, server latency %s: ideal %s req/s", thousands(float64(n)), conc, lat, thousands(ideal))
	c, err := compare(ctx, e, n, lat, profiles{})
	if err != nil {
		return err
	}
	minimal, llm := c.pick(e.cfg.best)
	e.figure("minimal client", fmt.Sprintf("%s req/s (%.1f %%)", thousands(minimal.rate), 100*minimal.rate/ideal), "", false)
	pct := 100 * llm.rate / ideal
	e.figure("llmbatch", fmt.Sprintf("%s req/s (%.1f %%)", thousands(llm.rate), pct), "≥ 95 % of ideal", pct >= 95)
	e.note("%s", c.how(e.cfg.best))
	e.note("group commit: %.0f outcomes per commit", float64(llm.outcomes)/float64(max(1, llm.commits)))
	e.note("store: %s", llm.queue)
	return nil
}

// comparison is the rounds of two clients run in turn, round i of each
// beside the other's.
type comparison struct {
	minimal, llm []runResult
}

// summary is what a client's rounds come to: the median (or best) rate and
// CPU per 1,000 requests, and the other figures of the round with that rate.
type summary struct {
	rate, cpuPer1k float64
	runResult
}

// pick summarizes each client's rounds.
func (c comparison) pick(best bool) (minimal, llm summary) {
	return summarize(c.minimal, best), summarize(c.llm, best)
}

func summarize(rs []runResult, best bool) summary {
	rates, cpus := make([]float64, len(rs)), make([]float64, len(rs))
	for i, r := range rs {
		rates[i], cpus[i] = r.rate(), r.cpuPer1k()
	}
	if best {
		i := argBest(rates)
		return summary{rate: rates[i], cpuPer1k: cpus[i], runResult: rs[i]}
	}
	return summary{rate: median(rates), cpuPer1k: median(cpus), runResult: rs[argMedian(rates)]}
}

// ratio is the median of the rounds' ratios, llmbatch's rate over the
// minimal client's in the same round (with best, the best rates' ratio).
func (c comparison) ratio(best bool) float64 {
	if best {
		m, l := c.pick(true)
		return l.rate / m.rate
	}
	return median(c.roundRatios())
}

func (c comparison) roundRatios() []float64 {
	out := make([]float64, len(c.llm))
	for i := range c.llm {
		out[i] = c.llm[i].rate() / c.minimal[i].rate()
	}
	return out
}

// ratios lists the rounds' ratios, for the noise to be seen.
func (c comparison) ratios() string {
	var parts []string
	for _, r := range c.roundRatios() {
		parts = append(parts, fmt.Sprintf("%.2f", r))
	}
	return strings.Join(parts, " ")
}

func (c comparison) how(best bool) string {
	if best {
		return fmt.Sprintf("best of %d rounds each", len(c.llm))
	}
	return fmt.Sprintf("median of %d rounds, the clients in turn; the ratio is the median of the rounds' ratios", len(c.llm))
}

// compare runs n requests with the minimal client, then with llmbatch, each
// against a fresh fake server answering after latency, -rounds times in
// turn. On a shared machine a round measures the neighbours too: the
// median of the rounds is the figure.
func compare(ctx context.Context, e *Env, n int, latency time.Duration, profile profiles) (comparison, error) {
	var c comparison
	file, err := e.input(n)
	if err != nil {
		return c, err
	}
	reqs, err := readBodies(file)
	if err != nil {
		return c, err
	}
	for round := range e.rounds(5) {
		m, err := runMinimalOnce(ctx, reqs, latency, e.cfg.concurrency)
		if err != nil {
			return c, fmt.Errorf("minimal client: %w", err)
		}
		l, err := runLLMBatchOnce(ctx, e, file, n, latency, profile)
		if err != nil {
			return c, fmt.Errorf("llmbatch: %w", err)
		}
		e.note("round %d: minimal client %s req/s, llmbatch %s req/s (%.2f×)", round+1, thousands(m.rate()), thousands(l.rate()), l.rate()/m.rate())
		c.minimal, c.llm = append(c.minimal, m), append(c.llm, l)
		profile = profiles{} // profile the first round only
	}
	return c, nil
}

func runMinimalOnce(ctx context.Context, reqs []jobs.Request, latency time.Duration, conc int) (runResult, error) {
	fake := fakeapi.New(fakeapi.Config{Key: benchKey, Latency: latency})
	defer fake.Close()
	return runMinimal(ctx, fake.URL(), reqs, conc)
}

func runLLMBatchOnce(ctx context.Context, e *Env, file string, n int, latency time.Duration, profile profiles) (runResult, error) {
	fake := fakeapi.New(fakeapi.Config{Key: benchKey, Latency: latency})
	defer fake.Close()
	res, err := runInProcess(ctx, e, fake.URL(), file, e.cfg.concurrency, profile)
	if err != nil {
		return res, err
	}
	if st := fake.Stats(); st.Served != int64(n) {
		return res, fmt.Errorf("the fake served %d answers for %d requests", st.Served, n)
	}
	return res, nil
}

// runMinimal sends every body once from conc goroutines sharing one
// http.Client, reading each answer to the end and keeping nothing: the
// machine's limit for this server.
func runMinimal(ctx context.Context, baseURL string, reqs []jobs.Request, conc int) (runResult, error) {
	return runMinimalWith(ctx, baseURL, reqs, conc, func(r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
}

// runMinimalWith is runMinimal reading each 200 answer with read.
func runMinimalWith(ctx context.Context, baseURL string, reqs []jobs.Request, conc int, read func(io.Reader) error) (runResult, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conc, conc
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	send := func(r jobs.Request) error {
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+string(r.Endpoint), bytes.NewReader(r.Body))
		if err != nil {
			return err
		}
		hreq.Header.Set("Content-Type", "application/json")
		hreq.Header.Set("Authorization", "Bearer "+benchKey)
		resp, err := client.Do(hreq)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return read(resp.Body)
	}
	runtime.GC()
	cpu0, start := cpuTime(), time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(reqs)); i = next.Add(1) - 1 {
				if err := send(reqs[i]); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return runResult{n: len(reqs), wall: time.Since(start), cpu: cpuTime() - cpu0}, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// importFresh imports file as job name into a new store file of its own.
func importFresh(ctx context.Context, e *Env, name, file string) (*sqlite.Store, jobs.Job, error) {
	st, err := sqlite.Open(ctx, e.path(fmt.Sprintf("%s-%d.db", name, time.Now().UnixNano())))
	if err != nil {
		return nil, jobs.Job{}, err
	}
	src, err := input.Open(file, input.Options{})
	if err != nil {
		st.Close()
		return nil, jobs.Job{}, err
	}
	defer src.Close()
	job, err := st.Import(ctx, jobs.Job{Name: name, Source: file}, src)
	if err != nil {
		st.Close()
		return nil, jobs.Job{}, err
	}
	return st, job, nil
}

// runInProcess imports file into a new store on disk and works the job with
// a worker.Runner, timing the run alone.
func runInProcess(ctx context.Context, e *Env, baseURL, file string, conc int, profile profiles) (runResult, error) {
	st, job, err := importFresh(ctx, e, "bench", file)
	if err != nil {
		return runResult{}, err
	}
	defer st.Close()
	client := worker.NewClient(worker.ClientOptions{BaseURL: baseURL, APIKey: benchKey, Timeout: time.Minute, Conns: conc})
	q := &timedQueue{Queue: st}
	runner := worker.New(q, job.ID, client, worker.Options{Concurrency: conc, MaxAttempts: 3})
	stopProfile, err := startProfile(profile)
	if err != nil {
		return runResult{}, err
	}
	runtime.GC()
	cpu0, start := cpuTime(), time.Now()
	err = runner.Run(ctx)
	res := runResult{n: job.Total, wall: time.Since(start), cpu: cpuTime() - cpu0}
	stopProfile()
	res.commits, res.outcomes = runner.Stats()
	res.queue = q.String()
	if err != nil {
		return res, err
	}
	stats, err := st.Stats(ctx, job.ID)
	if err != nil {
		return res, err
	}
	if got := stats.Counts[jobs.StatusSucceeded]; got != job.Total {
		return res, fmt.Errorf("%d of %d requests succeeded (%v)", got, job.Total, stats.Counts)
	}
	return res, nil
}

// profiles name the profiles of a run: CPU, and allocations; "" for none.
type profiles struct{ cpu, mem string }

// startProfile starts the profiles p names; stop ends them.
func startProfile(p profiles) (stop func(), err error) {
	stopCPU, err := startCPUProfile(p.cpu)
	if err != nil {
		return nil, err
	}
	if p.mem == "" {
		return stopCPU, nil
	}
	if err := writeAllocs(p.mem + ".base"); err != nil {
		stopCPU()
		return nil, err
	}
	return func() {
		stopCPU()
		_ = writeAllocs(p.mem)
	}, nil
}

func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, errors.Join(err, os.Remove(path))
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// writeAllocs writes the allocations so far (as of a GC, which it runs).
func writeAllocs(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
}
