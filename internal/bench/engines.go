package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/internal/pgtest"
)

// engineCase is one way the binary scenarios run llmbatch: a storage
// engine and how many runners (processes) share the job, each at
// -concurrency.
type engineCase struct {
	engine  string // "sqlite" or "postgres"
	runners int
}

func (c engineCase) String() string {
	if c.runners == 1 {
		return c.engine + ", 1 runner"
	}
	return fmt.Sprintf("%s, %d runners", c.engine, c.runners)
}

// file is the case's part of a file name.
func (c engineCase) file() string { return fmt.Sprintf("%s-%d", c.engine, c.runners) }

// sqliteOne is the case the issues' targets are written for.
var sqliteOne = engineCase{"sqlite", 1}

// engineCases reads -engines and -runners: each engine with each runner
// count, SQLite with one runner only (it holds a job for one run).
func engineCases(engines, runners string) ([]engineCase, error) {
	counts, err := parseSizes(runners)
	if err != nil {
		return nil, fmt.Errorf("-runners: %w", err)
	}
	var cases []engineCase
	for _, eng := range strings.Split(engines, ",") {
		eng = strings.TrimSpace(eng)
		if eng != "sqlite" && eng != "postgres" {
			return nil, fmt.Errorf("-engines: no engine %q (sqlite, postgres)", eng)
		}
		for _, n := range counts {
			c := engineCase{eng, n}
			if (eng == "sqlite" && n > 1) || slices.Contains(cases, c) {
				continue
			}
			cases = append(cases, c)
		}
	}
	if len(cases) == 0 {
		return nil, errors.New("-engines sqlite runs one runner only: add 1 to -runners")
	}
	return cases, nil
}

// pgServer is the PostgreSQL server the postgres cases create their
// databases on.
func pgServer() (string, error) {
	server := os.Getenv(pgtest.EnvServer)
	if server == "" {
		return "", errors.New("no PostgreSQL server: set " + pgtest.EnvServer + " (see docs/postgres-tests.md)")
	}
	return server, nil
}

// needsPostgres fails early, before any round, when a case needs a server
// that is not set.
func needsPostgres(cases []engineCase) error {
	for _, c := range cases {
		if c.engine == "postgres" {
			_, err := pgServer()
			return err
		}
	}
	return nil
}

// jobSource is where a round's fresh database comes from: SQLite copies
// the template file the job was imported into once; PostgreSQL imports
// the file into a new database on the server (a few tenths of a second,
// outside the time measured).
type jobSource struct {
	bin, file, template string
}

// freshDB is a database of engine holding job b as an import leaves it,
// and a function that removes it.
func freshDB(ctx context.Context, e *Env, src jobSource, engine, label string) (string, func(), error) {
	if engine == "sqlite" {
		db := e.path(label + ".db")
		if err := copyFile(db, src.template); err != nil {
			return "", nil, err
		}
		return db, func() { removeDB(db) }, nil
	}
	server, err := pgServer()
	if err != nil {
		return "", nil, err
	}
	db, drop, err := benchDB(e, server, engine, label)
	if err != nil {
		return "", nil, err
	}
	if _, err := runChild(ctx, src.bin, nil, "--db", db, "import", "--job", "b", src.file); err != nil {
		drop()
		return "", nil, err
	}
	return db, drop, nil
}

// dbName is the database a PostgreSQL DSN names (a URL, or keyword=value
// pairs where the last dbname wins).
func dbName(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		return strings.TrimPrefix(u.Path, "/")
	}
	name := ""
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "dbname="); ok {
			name = v
		}
	}
	return name
}

// startRunners starts n `llmbatch run` processes with args at once; with
// profile set, each writes its CPU profile there (PROFILE-rI.prof for
// runner I when there are several).
func startRunners(ctx context.Context, bin string, n int, profile string, args []string) ([]*child, error) {
	var children []*child
	for i := range n {
		env := []string{"OPENAI_API_KEY=" + benchKey}
		if profile != "" {
			p := profile + ".prof"
			if n > 1 {
				p = fmt.Sprintf("%s-r%d.prof", profile, i+1)
			}
			env = append(env, "LLMBATCH_CPUPROFILE="+p)
		}
		c, err := startChild(ctx, bin, env, args...)
		if err != nil {
			for _, started := range children {
				started.cmd.Process.Kill()
				started.wait()
			}
			return nil, err
		}
		children = append(children, c)
	}
	return children, nil
}

// waitRunners waits for every runner, fails unless each exited with code
// 0, and adds them up with together.
func waitRunners(children []*child, start time.Time) (childResult, error) {
	var rs []childResult
	var first error
	for i, c := range children {
		res, err := runChildOK(c, fmt.Sprintf("llmbatch run (runner %d)", i+1))
		if err != nil && first == nil {
			first = err
		}
		rs = append(rs, res)
	}
	return together(rs, time.Since(start)), first
}

// together is the runners of one case as one client: wall from the first
// start to the last exit, the CPU time of all, and the sum of their peak
// RSS (an upper bound of their peak together: the peaks need not come at
// once); runners keeps each one's own. One runner is itself.
func together(rs []childResult, wall time.Duration) childResult {
	if len(rs) == 1 {
		return rs[0]
	}
	all := childResult{wall: wall, runners: rs}
	for _, r := range rs {
		all.cpu += r.cpu
		all.maxRSS += r.maxRSS
		all.code = max(all.code, r.code)
	}
	return all
}

// perRunner is the range of f over a result's runners, "" for one runner.
func perRunner(r childResult, f func(childResult) float64, format string) string {
	if len(r.runners) == 0 {
		return ""
	}
	lo, hi := f(r.runners[0]), f(r.runners[0])
	for _, x := range r.runners[1:] {
		lo, hi = min(lo, f(x)), max(hi, f(x))
	}
	return fmt.Sprintf(" ("+format+"–"+format+" a runner)", lo, hi)
}
