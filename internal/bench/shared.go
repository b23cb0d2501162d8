package main

import (
	"context"
	"fmt"
	"os"

	"github.com/llmbatch/llmbatch/internal/pgtest"
)

func init() {
	register(Scenario{
		Name: "shared",
		Doc: "PostgreSQL beside SQLite (server in $LLMBATCH_TEST_POSTGRES): import lines/s, and the real binary's dispatch with one runner and with three sharing a job " +
			"(binary -engines sqlite,postgres -runners 1,3, one round)",
		Run: runShared,
	})
}

// sharedN is the requests of the shared scenario's dispatch runs; each
// runner has -concurrency requests in flight.
const sharedN = 20_000

func runShared(ctx context.Context, e *Env) error {
	server, err := pgServer()
	if err != nil {
		return err
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
	return sharedDispatch(ctx, e)
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
// latency, from start to the last runner's exit, as the binary scenario
// does with -engines sqlite,postgres -runners 1,3: one runner on SQLite,
// one on PostgreSQL, three on PostgreSQL; one round unless -rounds.
func sharedDispatch(ctx context.Context, e *Env) error {
	cases := []engineCase{sqliteOne, {"postgres", 1}, {"postgres", 3}}
	return binaryDispatch(ctx, e, binaryCase{"shared", sharedN, 0}, cases, e.rounds(1))
}
