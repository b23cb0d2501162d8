package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/internal/pgtest"
)

func init() {
	register(Scenario{
		Name: "shared",
		Doc:  "PostgreSQL beside SQLite (server in $LLMBATCH_TEST_POSTGRES): import lines/s, and the real binary's dispatch with one runner and with three sharing a job",
		Run:  runShared,
	})
}

// sharedN is the requests of the shared scenario's dispatch runs; each
// runner has -concurrency requests in flight.
const sharedN = 20_000

func runShared(ctx context.Context, e *Env) error {
	server := os.Getenv(pgtest.EnvServer)
	if server == "" {
		return errors.New("shared: no PostgreSQL server: set " + pgtest.EnvServer + " (see docs/postgres-tests.md)")
	}
	bin, err := e.binary()
	if err != nil {
		return err
	}
	lines, err := parseSizes(e.cfg.importLines)
	if err != nil {
		return err
	}
	for _, n := range lines[:1] {
		if err := sharedImport(ctx, e, bin, server, n); err != nil {
			return err
		}
	}
	return sharedDispatch(ctx, e, bin, server)
}

// sharedImport imports one file into SQLite and into PostgreSQL.
func sharedImport(ctx context.Context, e *Env, bin, server string, n int) error {
	file, err := e.input(n)
	if err != nil {
		return err
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		db, drop, err := benchDB(e, server, engine, fmt.Sprintf("import-%d", n))
		if err != nil {
			return err
		}
		res, err := runChild(ctx, bin, nil, "--db", db, "import", "--job", "imp", file)
		drop()
		if err != nil {
			return err
		}
		e.figure(fmt.Sprintf("import %s lines, %s", thousands(float64(n)), engine),
			fmt.Sprintf("%s lines/s, peak RSS %s", thousands(perSecond(n, res.wall)), mb(res.maxRSS)),
			target(engine == "postgres", "≥ 50,000 lines/s"), engine != "postgres" || perSecond(n, res.wall) >= 50_000)
	}
	return nil
}

// benchDB is a fresh database of engine and a function that removes it.
func benchDB(e *Env, server, engine, label string) (string, func(), error) {
	if engine == "sqlite" {
		db := e.path(label + ".db")
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(db + suffix)
		}
		return db, func() {}, nil
	}
	dsn, drop, err := pgtest.NewDatabase(server, "bench_"+label)
	if err != nil {
		return "", nil, err
	}
	return dsn, func() { _ = drop() }, nil
}

// sharedDispatch runs a job of sharedN requests against the fake at zero
// latency, from start to the last runner's exit: one runner on SQLite,
// one on PostgreSQL, three on PostgreSQL.
func sharedDispatch(ctx context.Context, e *Env, bin, server string) error {
	file, err := e.input(sharedN)
	if err != nil {
		return err
	}
	o := newObserved(fakeapi.Config{Key: benchKey})
	defer o.close()
	for _, c := range []struct {
		engine  string
		runners int
	}{{"sqlite", 1}, {"postgres", 1}, {"postgres", 3}} {
		db, drop, err := benchDB(e, server, c.engine, fmt.Sprintf("dispatch-%s-%d", c.engine, c.runners))
		if err != nil {
			return err
		}
		if _, err := runChild(ctx, bin, nil, "--db", db, "import", "--job", "d", file); err != nil {
			drop()
			return err
		}
		wall, peak, cpu, err := runRunners(ctx, bin, db, o.URL(), c.runners, e.cfg.concurrency)
		drop()
		if err != nil {
			return err
		}
		e.figure(fmt.Sprintf("dispatch %s requests, %s, %d runner(s) × --concurrency %d", thousands(sharedN), c.engine, c.runners, e.cfg.concurrency),
			fmt.Sprintf("%s req/s in %s; %.0f ms CPU per 1,000; peak RSS %s (largest runner)",
				thousands(perSecond(sharedN, wall)), wall.Round(10*time.Millisecond), cpu.Seconds()*1000*1000/sharedN, mb(peak)), "", false)
	}
	return nil
}

// runRunners starts runners `llmbatch run d` on db at once and waits for
// all: the wall time from the first start to the last exit, the largest
// peak RSS and the CPU time of all.
func runRunners(ctx context.Context, bin, db, base string, runners, conc int) (time.Duration, int64, time.Duration, error) {
	env := []string{"OPENAI_API_KEY=" + benchKey}
	start := time.Now()
	var children []*child
	for range runners {
		c, err := startChild(ctx, bin, env, "--db", db, "run", "--quiet", "--base-url", base,
			"--concurrency", fmt.Sprint(conc), "d")
		if err != nil {
			return 0, 0, 0, err
		}
		children = append(children, c)
	}
	var peak int64
	var cpu time.Duration
	var first error
	for _, c := range children {
		res, err := c.wait()
		if err != nil && first == nil {
			first = fmt.Errorf("%w: %s", err, c.output())
		}
		peak, cpu = max(peak, res.maxRSS), cpu+res.cpu
	}
	return time.Since(start), peak, cpu, first
}
