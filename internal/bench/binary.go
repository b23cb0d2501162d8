package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

func init() {
	register(Scenario{
		Name: "binary",
		Doc: "the llmbatch binary from start to exit (`run JOB`, job imported before) beside a minimal client in a child process, " +
			"against the fake in this process, at zero latency: requests/s and CPU per request (-engines, -runners: PostgreSQL beside SQLite)",
		Run: func(ctx context.Context, e *Env) error {
			cases, err := e.cases()
			if err != nil {
				return err
			}
			return binaryDispatch(ctx, e, binaryCase{"dispatch", e.cfg.dispatchN, 0}, cases, e.rounds(5))
		},
	})
	register(Scenario{
		Name: "binlatency",
		Doc:  "as binary, at 50 ms latency: 5,000 and 20,000 requests from start to exit, against the ideal (-engines, -runners)",
		Run:  runBinLatency,
	})
}

// binaryCase is one comparison of the binary scenario.
type binaryCase struct {
	label   string
	n       int
	latency time.Duration
}

// childRound is one round of a child-process comparison: the minimal
// client, then llmbatch in each engine case, in turn.
type childRound struct {
	minimal childResult
	llm     []childResult // by case, in the order of the cases
}

// client is the minimal client's result for i < 0, else case i's.
func (r childRound) client(i int) childResult {
	if i < 0 {
		return r.minimal
	}
	return r.llm[i]
}

func runBinLatency(ctx context.Context, e *Env) error {
	cases, err := e.cases()
	if err != nil {
		return err
	}
	conc := e.cfg.concurrency
	sizes, err := parseSizes(e.cfg.binLatencyN)
	if err != nil {
		return fmt.Errorf("-binlatency-requests: %w", err)
	}
	for _, n := range sizes {
		c := binaryCase{fmt.Sprintf("latency-%d", n), n, e.cfg.latency}
		rounds, err := binaryRounds(ctx, e, c, cases, fakeapi.Config{Key: benchKey, Latency: c.latency}, e.rounds(5))
		if err != nil {
			return err
		}
		want := 95.0
		if n >= 20_000 {
			want = 97
		}
		// The ideal of a case: n requests, 50 ms each, runners × conc in flight.
		ideal := func(runners int) time.Duration {
			return time.Duration(float64(n) / float64(runners*conc) * float64(c.latency))
		}
		e.note("%s requests at %s latency, --concurrency %d a runner (the minimal client: %d); ideal n × %s / (runners × %d); median of %d rounds, the clients in turn; "+
			"to last answer: the ideal over the time from start to the fake's last answer; + server as in binary",
			thousands(float64(n)), c.latency, conc, conc, c.latency, conc, len(rounds))
		t := [][]string{{"client", "ideal", "wall", "% of ideal (rounds)", "to last answer", "CPU ms per 1,000", "+ server", "peak RSS", "target"}}
		for i := -1; i < len(cases); i++ {
			runners := 1
			if i >= 0 {
				runners = cases[i].runners
			}
			pct := func(r childResult) float64 { return 100 * ideal(runners).Seconds() / r.wall.Seconds() }
			toLast := func(r childResult) float64 { return 100 * ideal(runners).Seconds() / r.last.Seconds() }
			pcts := values(rounds, i, pct)
			row := []string{clientName(cases, i), ms(ideal(runners)), ms(time.Duration(median(values(rounds, i, wallOf)))),
				fmt.Sprintf("%.1f %% (%s)", median(pcts), percents(pcts)), fmt.Sprintf("%.1f %%", median(values(rounds, i, toLast))),
				cpuCell(rounds, i, n), serverCell(rounds, i, n), rssCell(rounds, i), ""}
			if i >= 0 && cases[i] == sqliteOne {
				row[8] = e.target(fmt.Sprintf("≥ %.0f %% of ideal", want), median(pcts) >= want)
			}
			t = append(t, row)
		}
		e.table(t)
	}
	return nil
}

// binaryDispatch compares the binary in each case with the minimal client
// at zero latency: requests/s from start to exit, their ratio, CPU per
// 1,000 requests and peak RSS of each client alone (the fake's are this
// process's).
func binaryDispatch(ctx context.Context, e *Env, c binaryCase, cases []engineCase, rounds int) error {
	rs, err := binaryRounds(ctx, e, c, cases, fakeapi.Config{Key: benchKey}, rounds)
	if err != nil {
		return err
	}
	rate := func(r childResult) float64 { return perSecond(c.n, r.wall) }
	e.note("%s requests at zero latency, --concurrency %d a runner; median of %d rounds, the clients in turn; "+
		"a ratio is the median of the rounds' ratios; several runners: CPU of all, peak RSS the sum of each one's; "+
		"to last answer: from start to the fake's last answer, without the exit; "+
		"+ server: the PostgreSQL server's CPU for the run (its backends and its own processes)",
		thousands(float64(c.n)), e.cfg.concurrency, len(rs))
	toLast := func(r childResult) float64 { return perSecond(c.n, r.last) }
	t := [][]string{{"client", "req/s", "× minimal (rounds)", "to last answer", "CPU ms per 1,000", "+ server", "peak RSS", "target"}}
	for i := -1; i < len(cases); i++ {
		row := []string{clientName(cases, i), thousands(median(values(rs, i, rate))), "", thousands(median(values(rs, i, toLast))),
			cpuCell(rs, i, c.n), serverCell(rs, i, c.n), rssCell(rs, i), ""}
		if i >= 0 {
			ratios := make([]float64, len(rs))
			for j, r := range rs {
				ratios[j] = rate(r.llm[i]) / rate(r.minimal)
			}
			ratio, cpu := median(ratios), median(values(rs, i, cpuPer(c.n)))
			row[2] = fmt.Sprintf("%.2f× (%s)", ratio, floats(ratios))
			if cases[i] == sqliteOne {
				row[7] = e.target("≥ 0.70×", ratio >= 0.7) + "; " + e.target("≤ 60 ms CPU", cpu <= 60)
			}
		}
		t = append(t, row)
	}
	e.table(t)
	return nil
}

// binaryRounds runs case c in each engine case, rounds times (-rounds if
// given), beside the minimal client.
func binaryRounds(ctx context.Context, e *Env, c binaryCase, cases []engineCase, cfg fakeapi.Config, rounds int) ([]childRound, error) {
	file, err := e.input(c.n)
	if err != nil {
		return nil, err
	}
	return childRounds(ctx, e, roundSpec{label: c.label, file: file, conc: e.cfg.concurrency, cfg: cfg, cases: cases, rounds: rounds})
}

// roundSpec is what childRounds runs.
type roundSpec struct {
	label, file string
	conc        int // requests in flight a client (a runner)
	cfg         fakeapi.Config
	extra       []string // more flags of `llmbatch run`
	cases       []engineCase
	rounds      int
}

// childRounds runs the minimal client, then llmbatch in each case, in
// turn, s.rounds times, on the requests of s.file; each llmbatch run on a
// fresh database holding the job as an import leaves it, against a fresh
// fake server as s.cfg says.
func childRounds(ctx context.Context, e *Env, s roundSpec) ([]childRound, error) {
	if err := needsPostgres(s.cases); err != nil {
		return nil, err
	}
	bin, err := e.binary()
	if err != nil {
		return nil, err
	}
	src := jobSource{bin: bin, file: s.file, template: e.path(s.label + "-template.db")}
	removeDB(src.template)
	if _, err := runChild(ctx, bin, nil, "--db", src.template, "import", "--job", "b", s.file); err != nil {
		return nil, err
	}
	reqs, err := readBodies(s.file)
	if err != nil {
		return nil, err
	}
	bodies := e.path(s.label + "-bodies.txt")
	if err := writeBodies(bodies, reqs); err != nil {
		return nil, err
	}
	var rounds []childRound
	for round := range s.rounds {
		var r childRound
		if r.minimal, err = minimalRound(ctx, s.cfg, bodies, s.conc, len(reqs)); err != nil {
			return nil, fmt.Errorf("minimal client: %w", err)
		}
		line := fmt.Sprintf("%s round %d: minimal client %s", s.label, round+1, resultNote(r.minimal))
		for _, c := range s.cases {
			profile := ""
			if e.cfg.binProfile != "" && round == 0 {
				profile = e.cfg.binProfile + "-" + s.label
				if len(s.cases) > 1 || c != sqliteOne {
					profile += "-" + c.file()
				}
			}
			res, err := llmbatchRound(ctx, e, src, s, c, len(reqs), profile)
			if err != nil {
				return nil, fmt.Errorf("llmbatch (%s): %w", c, err)
			}
			r.llm = append(r.llm, res)
			line += fmt.Sprintf("; %s %s", c, resultNote(res))
		}
		e.note("%s", line)
		rounds = append(rounds, r)
	}
	return rounds, nil
}

// resultNote is a client's wall, CPU and peak RSS in a round, with each
// runner's wall when several shared the job.
func resultNote(r childResult) string {
	s := fmt.Sprintf("%s (first request %s, last answer %s; %.2f CPU-s, %s", ms(r.wall), ms(r.first), ms(r.last),
		r.cpu.Seconds(), mb(r.maxRSS))
	if r.server > 0 {
		s += fmt.Sprintf(", server %.2f CPU-s", r.server.Seconds())
	}
	for i, x := range r.runners {
		sep := ", "
		if i == 0 {
			sep = "; runners "
		}
		s += sep + ms(x.wall)
	}
	return s + ")"
}

func minimalRound(ctx context.Context, cfg fakeapi.Config, bodies string, conc, n int) (childResult, error) {
	o := newObserved(cfg)
	defer o.close()
	c, err := minimalChild(ctx, minimalSpec{URL: o.URL(), Bodies: bodies, Concurrency: conc, Stream: cfg.StreamWords > 0})
	if err != nil {
		return childResult{}, err
	}
	res, err := runChildOK(c, "minimal client")
	res.first, res.last = o.span(c.start)
	if err == nil {
		err = servedAll(o.fake, n)
	}
	return res, err
}

// llmbatchRound runs case c once: c.runners `llmbatch run` processes
// sharing job b on a fresh database, from the first start to the last
// exit; profile, if set, names their CPU profiles.
func llmbatchRound(ctx context.Context, e *Env, src jobSource, s roundSpec, c engineCase, n int, profile string) (childResult, error) {
	db, drop, err := freshDB(ctx, e, src, c.engine, "binary-run-"+c.file())
	if err != nil {
		return childResult{}, err
	}
	defer drop()
	o := newObserved(s.cfg)
	defer o.close()
	args := append([]string{"--db", db, "run", "--quiet", "--base-url", o.URL(), "--concurrency", strconv.Itoa(s.conc)}, s.extra...)
	var server *serverCPU
	if c.engine == "postgres" {
		server = watchServerCPU(dbName(db))
	}
	start := time.Now()
	children, err := startRunners(ctx, src.bin, c.runners, profile, append(args, "b"))
	if err != nil {
		if server != nil {
			server.done()
		}
		return childResult{}, err
	}
	res, err := waitRunners(children, start)
	res.first, res.last = o.span(start)
	if server != nil {
		res.server = server.done()
	}
	if err == nil {
		err = servedAll(o.fake, n)
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

// clientName names row i of a table: the minimal client for i < 0.
func clientName(cases []engineCase, i int) string {
	if i < 0 {
		return "minimal client"
	}
	return "llmbatch " + cases[i].String()
}

// values are f of client i (the minimal client for i < 0) in each round.
func values(rounds []childRound, i int, f func(childResult) float64) []float64 {
	out := make([]float64, len(rounds))
	for j, r := range rounds {
		out[j] = f(r.client(i))
	}
	return out
}

// medianOf is the median of f over the minimal client's rounds and over
// each case's.
func medianOf(rounds []childRound, f func(childResult) float64) (minimal float64, llm []float64) {
	if len(rounds) == 0 {
		return 0, nil
	}
	for i := range rounds[0].llm {
		llm = append(llm, median(values(rounds, i, f)))
	}
	return median(values(rounds, -1, f)), llm
}

// medianRound is client i's result in the round where f of it is the
// median, for the figures of each runner beside their sum.
func medianRound(rounds []childRound, i int, f func(childResult) float64) childResult {
	return rounds[argMedian(values(rounds, i, f))].client(i)
}

func wallOf(r childResult) float64 { return float64(r.wall) }

// cpuPer is CPU time in ms per 1,000 of n requests.
func cpuPer(n int) func(childResult) float64 {
	return func(r childResult) float64 { return r.cpu.Seconds() * 1e6 / float64(n) }
}

// cpuCell is client i's median CPU per 1,000 requests, with each runner's
// range (of the median round) when several share the job.
func cpuCell(rounds []childRound, i, n int) string {
	f := cpuPer(n)
	return fmt.Sprintf("%.0f", median(values(rounds, i, f))) + perRunner(medianRound(rounds, i, f), f, "%.0f")
}

// serverCell is the median CPU per 1,000 requests of the PostgreSQL server
// for client i, "" when it used none (SQLite, the minimal client).
func serverCell(rounds []childRound, i, n int) string {
	f := func(r childResult) float64 { return r.server.Seconds() * 1e6 / float64(n) }
	if m := median(values(rounds, i, f)); m > 0 {
		return fmt.Sprintf("%.0f", m)
	}
	return ""
}

// rssCell is client i's median peak RSS, as cpuCell.
func rssCell(rounds []childRound, i int) string {
	f := func(r childResult) float64 { return float64(r.maxRSS) / 1e6 }
	return fmt.Sprintf("%.1f MB", median(values(rounds, i, f))) + perRunner(medianRound(rounds, i, f), f, "%.1f")
}

func percents(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(s, " ")
}

func floats(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, " ")
}
