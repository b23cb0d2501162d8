package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

func init() {
	register(Scenario{
		Name: "binary",
		Doc: "the llmbatch binary from start to exit (`run JOB`, job imported before) beside a minimal client in a child process, " +
			"against the fake in this process, at zero latency: requests/s and CPU per request",
		Run: func(ctx context.Context, e *Env) error {
			return binaryDispatch(ctx, e, binaryCase{"dispatch", e.cfg.dispatchN, 0})
		},
	})
	register(Scenario{
		Name: "binlatency",
		Doc:  "as binary, at 50 ms latency: 5,000 and 20,000 requests from start to exit, against the ideal",
		Run:  runBinLatency,
	})
}

// binaryCase is one comparison of the binary scenario.
type binaryCase struct {
	label   string
	n       int
	latency time.Duration
}

// childRound is one round of a child-process comparison.
type childRound struct {
	minimal, llm childResult
}

func runBinLatency(ctx context.Context, e *Env) error {
	conc := e.cfg.concurrency
	for _, n := range []int{5_000, 20_000} {
		c := binaryCase{fmt.Sprintf("latency-%d", n), n, e.cfg.latency}
		rounds, err := binaryRounds(ctx, e, c, conc, fakeapi.Config{Key: benchKey, Latency: c.latency})
		if err != nil {
			return err
		}
		ideal := time.Duration(float64(n) / float64(conc) * float64(c.latency))
		pct := func(r childResult) float64 { return 100 * ideal.Seconds() / r.wall.Seconds() }
		m, l := medianOf(rounds, pct)
		want := 95.0
		if n >= 20_000 {
			want = 97
		}
		e.note("%s requests at %s latency, concurrency %d: ideal %s (%s req/s); rounds (llmbatch): %s", thousands(float64(n)),
			c.latency, conc, ms(ideal), thousands(float64(conc)/c.latency.Seconds()), roundList(rounds, func(r childRound) string {
				return fmt.Sprintf("%.1f %%", pct(r.llm))
			}))
		cpu := func(r childResult) float64 { return r.cpu.Seconds() * 1e6 / float64(n) }
		mCPU, lCPU := medianOf(rounds, cpu)
		e.figure(fmt.Sprintf("minimal client, %s requests", thousands(float64(n))), fmt.Sprintf("%.1f %% of ideal, %.0f ms CPU per 1,000", m, mCPU), "", false)
		e.figure(fmt.Sprintf("llmbatch, %s requests, start to exit", thousands(float64(n))), fmt.Sprintf("%.1f %% of ideal (%s), %.0f ms CPU per 1,000", l,
			ms(time.Duration(median(walls(rounds)))), lCPU), fmt.Sprintf("≥ %.0f %% of ideal", want), l >= want)
	}
	return nil
}

// binaryDispatch compares the binary with the minimal client at zero
// latency: requests/s from start to exit, and CPU per 1,000 requests of
// each client alone (the fake's is this process's).
func binaryDispatch(ctx context.Context, e *Env, c binaryCase) error {
	rounds, err := binaryRounds(ctx, e, c, e.cfg.concurrency, fakeapi.Config{Key: benchKey})
	if err != nil {
		return err
	}
	rate := func(r childResult) float64 { return perSecond(c.n, r.wall) }
	cpu := func(r childResult) float64 { return r.cpu.Seconds() * 1000 / float64(c.n) }
	mRate, lRate := medianOf(rounds, rate)
	mCPU, lCPU := medianOf(rounds, cpu)
	ratios := make([]float64, len(rounds))
	for i, r := range rounds {
		ratios[i] = rate(r.llm) / rate(r.minimal)
	}
	ratio := median(ratios)
	e.note("%s requests at zero latency, concurrency %d; median of %d rounds, the clients in turn", thousands(float64(c.n)),
		e.cfg.concurrency, len(rounds))
	e.figure("minimal client (child process)", fmt.Sprintf("%s req/s, %.0f ms CPU per 1,000", thousands(mRate), 1000*mCPU), "", false)
	e.figure("llmbatch run, start to exit", fmt.Sprintf("%s req/s, %.0f ms CPU per 1,000", thousands(lRate), 1000*lCPU),
		"≤ 60 ms CPU per 1,000", lCPU <= 0.060)
	e.figure("llmbatch / minimal client", fmt.Sprintf("%.2f× (rounds %s)", ratio, floats(ratios)), "≥ 0.70×", ratio >= 0.7)
	e.figure("peak RSS, minimal / llmbatch", fmt.Sprintf("%s / %s", mb(rounds[0].minimal.maxRSS), mb(rounds[0].llm.maxRSS)), "", false)
	return nil
}

// binaryRounds runs case c -rounds times: the minimal client in a child
// process, then `llmbatch run JOB` on a fresh copy of a database the job
// was imported into, each against a fresh fake server as cfg says.
func binaryRounds(ctx context.Context, e *Env, c binaryCase, conc int, cfg fakeapi.Config) ([]childRound, error) {
	file, err := e.input(c.n)
	if err != nil {
		return nil, err
	}
	return childRounds(ctx, e, c.label, file, conc, cfg, nil)
}

// childRounds runs the minimal client and llmbatch in turn, -rounds times,
// on the requests of file at concurrency conc; extra are more flags of
// `llmbatch run`.
func childRounds(ctx context.Context, e *Env, label, file string, conc int, cfg fakeapi.Config, extra []string) ([]childRound, error) {
	bin, err := e.binary()
	if err != nil {
		return nil, err
	}
	template := e.path(label + "-template.db")
	removeDB(template)
	if _, err := runChild(ctx, bin, nil, "--db", template, "import", "--job", "b", file); err != nil {
		return nil, err
	}
	reqs, err := readBodies(file)
	if err != nil {
		return nil, err
	}
	bodies := e.path(label + "-bodies.txt")
	if err := writeBodies(bodies, reqs); err != nil {
		return nil, err
	}
	var rounds []childRound
	for round := range e.rounds(5) {
		var r childRound
		if r.minimal, err = minimalRound(ctx, cfg, bodies, conc, len(reqs)); err != nil {
			return nil, fmt.Errorf("minimal client: %w", err)
		}
		profile := ""
		if e.cfg.binProfile != "" && round == 0 {
			profile = e.cfg.binProfile + "-" + label + ".prof"
		}
		if r.llm, err = llmbatchRound(ctx, e, bin, cfg, template, conc, len(reqs), profile, extra); err != nil {
			return nil, fmt.Errorf("llmbatch: %w", err)
		}
		e.note("%s round %d: minimal client %s (%.2f CPU-s, %s), llmbatch %s (%.2f CPU-s, %s)", label, round+1,
			ms(r.minimal.wall), r.minimal.cpu.Seconds(), mb(r.minimal.maxRSS), ms(r.llm.wall), r.llm.cpu.Seconds(), mb(r.llm.maxRSS))
		rounds = append(rounds, r)
	}
	return rounds, nil
}

func minimalRound(ctx context.Context, cfg fakeapi.Config, bodies string, conc, n int) (childResult, error) {
	fake := fakeapi.New(cfg)
	defer fake.Close()
	c, err := minimalChild(ctx, minimalSpec{URL: fake.URL(), Bodies: bodies, Concurrency: conc, Stream: cfg.StreamWords > 0})
	if err != nil {
		return childResult{}, err
	}
	res, err := runChildOK(c, "minimal client")
	if err == nil {
		err = servedAll(fake, n)
	}
	return res, err
}

func llmbatchRound(ctx context.Context, e *Env, bin string, cfg fakeapi.Config, template string, conc, n int, profile string,
	extra []string) (childResult, error) {
	db := e.path("binary-run.db")
	if err := copyFile(db, template); err != nil {
		return childResult{}, err
	}
	fake := fakeapi.New(cfg)
	defer fake.Close()
	env := []string{"OPENAI_API_KEY=" + benchKey}
	if profile != "" {
		env = append(env, "LLMBATCH_CPUPROFILE="+profile)
	}
	args := append([]string{"--db", db, "run", "--quiet", "--base-url", fake.URL(), "--concurrency", strconv.Itoa(conc)}, extra...)
	c, err := startChild(ctx, bin, env, append(args, "b")...)
	if err != nil {
		return childResult{}, err
	}
	res, err := runChildOK(c, "llmbatch run")
	if err == nil {
		err = servedAll(fake, n)
	}
	return res, err
}

// servedAll fails unless the fake answered every request in full.
func servedAll(fake *fakeapi.Server, n int) error {
	if st := fake.Stats(); st.Served != int64(n) {
		return fmt.Errorf("the fake served %d answers for %d requests", st.Served, n)
	}
	return nil
}

// medianOf is the median of f over each client's rounds.
func medianOf(rounds []childRound, f func(childResult) float64) (minimal, llm float64) {
	ms, ls := make([]float64, len(rounds)), make([]float64, len(rounds))
	for i, r := range rounds {
		ms[i], ls[i] = f(r.minimal), f(r.llm)
	}
	return median(ms), median(ls)
}

// walls are llmbatch's wall times, as float64 durations.
func walls(rounds []childRound) []float64 {
	out := make([]float64, len(rounds))
	for i, r := range rounds {
		out[i] = float64(r.llm.wall)
	}
	return out
}

func roundList(rounds []childRound, f func(childRound) string) string {
	s := ""
	for i, r := range rounds {
		if i > 0 {
			s += ", "
		}
		s += f(r)
	}
	return s
}

func floats(xs []float64) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.2f", x)
	}
	return s
}
