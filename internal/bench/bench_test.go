package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/internal/pgtest"
	"github.com/llmbatch/llmbatch/jobs"
)

// TestMain is also the minimal client of the binary scenarios: they start
// this program again with -minimal-child, and in the tests this program
// is the test binary.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "-minimal-child" {
		if err := runMinimalChild(os.Args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "bench minimal client: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", -25000: "-25,000"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestChoose(t *testing.T) {
	names := func(ss []Scenario) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	// Other files register more scenarios; these are the ones of this file's
	// neighbours, in the order of their files.
	got, err := choose(config{})
	if err != nil || !isSubsequence([]string{"dispatch", "latency", "import"}, names(got)) ||
		slices.Contains(names(got), "memory") || slices.Contains(names(got), "resume") {
		t.Errorf("default scenarios = %v, %v; want dispatch, latency, import and no huge one", names(got), err)
	}
	got, err = choose(config{huge: true})
	if err != nil || !isSubsequence([]string{"dispatch", "latency", "import", "memory", "resume"}, names(got)) {
		t.Errorf("-huge scenarios = %v, %v", names(got), err)
	}
	if got, err = choose(config{only: "resume,import"}); err != nil || !slices.Equal(names(got), []string{"import", "resume"}) {
		t.Errorf("-only resume,import = %v, %v", names(got), err)
	}
	if _, err := choose(config{only: "bogus"}); err == nil {
		t.Error("-only bogus accepted")
	}
}

// isSubsequence reports whether every item of want is in got, in order.
func isSubsequence(want, got []string) bool {
	for _, g := range got {
		if len(want) > 0 && g == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

// TestCompareSmall runs the dispatch comparison end to end at a small size:
// both clients must get every request answered.
func TestCompareSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	e, err := newEnv(config{dir: t.TempDir(), concurrency: 8, rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := compare(context.Background(), e, 300, time.Millisecond, profiles{})
	if err != nil {
		t.Fatal(err)
	}
	minimal, llm := c.pick(false)
	if minimal.n != 300 || llm.n != 300 || minimal.rate <= 0 || llm.rate <= 0 || llm.outcomes != 300 {
		t.Errorf("minimal = %+v, llmbatch = %+v; want 300 requests each", minimal, llm)
	}
}

// TestScatteredSmall runs the scattered scenario's pipeline at a small
// size: every request succeeds, the faults reach the runner, and the
// clean run sees none.
func TestScatteredSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	e, err := newEnv(config{dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := scCase{n: 200, conc: 8, lo: time.Millisecond, hi: 3 * time.Millisecond,
		throttle: 0.1, err5: 0.05, un50: 0.05, seed: 1, retry: 10 * time.Millisecond}
	faulty, err := scatteredRun(context.Background(), e, c)
	if err != nil {
		t.Fatal(err)
	}
	clean, err := scatteredRun(context.Background(), e, c.clean())
	if err != nil {
		t.Fatal(err)
	}
	if faulty.calls <= int64(c.n) || faulty.limited == 0 || clean.calls != int64(c.n) || clean.limited != 0 {
		t.Errorf("faulty run %+v, clean run %+v; want more calls than requests and some 429s, then one call each and none",
			faulty, clean)
	}
	if faulty.lowest < 1 || faulty.lowest > c.conc || faulty.p95 <= 0 || faulty.p95 > faulty.wall {
		t.Errorf("faulty run %+v: concurrency or 95th percentile out of range", faulty)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
		arg  int
	}{
		{[]float64{3, 1, 2}, 2, 2},
		{[]float64{4, 1, 3, 2}, 2.5, 3},
		{[]float64{5}, 5, 0},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if got := argMedian(tt.in); got != tt.arg {
			t.Errorf("argMedian(%v) = %d, want %d", tt.in, got, tt.arg)
		}
	}
}

func TestCategorize(t *testing.T) {
	out := []byte(`File: bench
Type: cpu
-----------+-------------------------------------------------------
      10ms   runtime.findObject
             runtime.gcDrain
             runtime.gcBgMarkWorker
-----------+-------------------------------------------------------
     1.20s   runtime.cgocall
             github.com/mattn/go-sqlite3._Cfunc__sqlite3_step_values
             github.com/llmbatch/llmbatch/store/sqlite.claimTx
-----------+-------------------------------------------------------
      30ms   internal/runtime/syscall/linux.Syscall6
             syscall.write
             net.(*conn).Write
             net/http.(*persistConn).writeLoop
-----------+-------------------------------------------------------
      20ms   runtime.mallocgc
             encoding/json.Unmarshal
             github.com/llmbatch/llmbatch/worker.(*Client).call
-----------+-------------------------------------------------------
      40ms   github.com/jackc/pgx/v5/pgproto3.(*Frontend).Receive
             github.com/jackc/pgx/v5.(*Conn).Query
             github.com/llmbatch/llmbatch/store/postgres.(*Store).Claim
`)
	samples, err := parseTraces(out)
	if err != nil || len(samples) != 5 {
		t.Fatalf("parseTraces: %d samples, %v; want 5", len(samples), err)
	}
	wantValues := []time.Duration{10 * time.Millisecond, 1200 * time.Millisecond, 30 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	wantNames := []string{"GC", "SQLite", "syscalls", "JSON", "PostgreSQL"}
	for i, s := range samples {
		if got := categories[categorize(s.stack)].name; s.value != wantValues[i] || !strings.HasPrefix(got, wantNames[i]) {
			t.Errorf("sample %d: %v in %q, want %v in %s…", i, s.value, got, wantValues[i], wantNames[i])
		}
	}
}

func TestReadEvents(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	tests := []struct {
		name, in string
		want     error
	}{
		{"Done", "data: {\"a\":1}\n\n: keep-alive\n\ndata: [DONE]\n\n", nil},
		{"LongLine", "data: \"" + long + "\"\n\ndata: [DONE]\n\n", nil},
		{"Truncated", "data: {\"a\":1}\n\n", errNoDone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readEvents(strings.NewReader(tt.in)); !errors.Is(got, tt.want) {
				t.Errorf("readEvents = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBodyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bodies.txt")
	want := []jobs.Request{{Endpoint: jobs.EndpointChat, Body: []byte(`{"a":"b\tc"}`)}, {Endpoint: jobs.EndpointCompletions, Body: []byte(`{}`)}}
	if err := writeBodies(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readBodyFile(path)
	if err != nil || len(got) != len(want) {
		t.Fatalf("readBodyFile = %d requests, %v", len(got), err)
	}
	for i := range want {
		if got[i].Endpoint != want[i].Endpoint || string(got[i].Body) != string(want[i].Body) {
			t.Errorf("request %d = %s %s, want %s %s", i, got[i].Endpoint, got[i].Body, want[i].Endpoint, want[i].Body)
		}
	}
}

func TestEngineCases(t *testing.T) {
	tests := []struct {
		engines, runners string
		want             []engineCase
		err              bool
	}{
		{"sqlite", "1", []engineCase{sqliteOne}, false},
		{"sqlite,postgres", "1,3", []engineCase{sqliteOne, {"postgres", 1}, {"postgres", 3}}, false},
		{"postgres, sqlite", "3,1,3", []engineCase{{"postgres", 3}, {"postgres", 1}, sqliteOne}, false},
		{"sqlite", "3", nil, true},
		{"mysql", "1", nil, true},
		{"postgres", "0", nil, true},
		{"postgres", "x", nil, true},
	}
	for _, tt := range tests {
		got, err := engineCases(tt.engines, tt.runners)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("engineCases(%q, %q) = %v, %v; want %v, error %v", tt.engines, tt.runners, got, err, tt.want, tt.err)
		}
	}
}

func TestTogether(t *testing.T) {
	one := childResult{wall: time.Second, cpu: 2 * time.Second, maxRSS: 10}
	if got := together([]childResult{one}, 5*time.Second); got.wall != time.Second || got.runners != nil {
		t.Errorf("together of one = %+v, want the runner itself", got)
	}
	two := childResult{wall: 3 * time.Second, cpu: time.Second, maxRSS: 30, code: 1}
	got := together([]childResult{one, two}, 4*time.Second)
	if got.wall != 4*time.Second || got.cpu != 3*time.Second || got.maxRSS != 40 || got.code != 1 || len(got.runners) != 2 {
		t.Errorf("together of two = %+v, want wall 4s, cpu 3s, RSS 40, code 1 and both runners", got)
	}
	rss := func(r childResult) float64 { return float64(r.maxRSS) }
	if got, want := perRunner(got, rss, "%.0f"), " (10–30 a runner)"; got != want {
		t.Errorf("perRunner = %q, want %q", got, want)
	}
	if got := perRunner(one, rss, "%.0f"); got != "" {
		t.Errorf("perRunner of one runner = %q, want none", got)
	}
}

func TestServerRole(t *testing.T) {
	const db = "llmbatch_bench_run_0a1b"
	tests := []struct {
		cmd  string
		want role
	}{
		{"postgres: postgres llmbatch_bench_run_0a1b 127.0.0.1(40312) idle", roleBackend},
		{"postgres: postgres llmbatch_bench_run_0a1b 127.0.0.1(40312) UPDATE", roleBackend},
		{"postgres: autovacuum worker llmbatch_bench_run_0a1b", roleBackend},
		{"postgres: postgres llmbatch_bench_run_0a1bc 127.0.0.1(40312) idle", roleOther},
		{"postgres: postgres other 127.0.0.1(40312) idle", roleOther},
		{"postgres: checkpointer", roleServer},
		{"postgres: walwriter", roleServer},
		{"postgres: main: background writer", roleServer},
		{"/usr/lib/postgresql/15/bin/postgres -D /tmp/data", roleUnknown},
		{"/tmp/llmbatch --db postgres://x/llmbatch_bench_run_0a1b run b", roleOther},
		{"", roleOther},
	}
	for _, tt := range tests {
		if got := serverRole(tt.cmd, db); got != tt.want {
			t.Errorf("serverRole(%q) = %d, want %d", tt.cmd, got, tt.want)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	stat := "4242 (postgres: a (b) c) S 10285 10285 10285 0 -1 4194560 300 0 0 0 123 45 0 0 20 0 1 0 500 0 0\n"
	if got, ok := parseStatCPU([]byte(stat)); !ok || got != 1680*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 1.68s", got, ok)
	}
	if _, ok := parseStatCPU([]byte("4242 (x) S 1 2")); ok {
		t.Error("parseStatCPU of a short line succeeded")
	}
	if got, ok := procCPU(os.Getpid()); !ok || got <= 0 {
		t.Errorf("procCPU(self) = %v, %v; want some CPU time", got, ok)
	}
}

func TestDBName(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://postgres@127.0.0.1:5432/llmbatch_x?sslmode=disable": "llmbatch_x",
		"host=/tmp dbname=postgres user=me dbname=llmbatch_y":           "llmbatch_y",
	} {
		if got := dbName(dsn); got != want {
			t.Errorf("dbName(%q) = %q, want %q", dsn, got, want)
		}
	}
}

// TestBinaryRoundsSmall runs a round of the binary scenario at a small
// size: the minimal client, then the binary on SQLite and, with a test
// server, on PostgreSQL with one runner and two sharing the job, each on a
// fresh database; the fake must answer every request once in each.
func TestBinaryRoundsSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cases := []engineCase{sqliteOne}
	if pgtest.Available() {
		cases = append(cases, engineCase{"postgres", 1}, engineCase{"postgres", 2})
	}
	e, err := newEnv(config{dir: t.TempDir(), concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	c := binaryCase{"small", 300, time.Millisecond}
	rounds, err := binaryRounds(t.Context(), e, c, cases, fakeapi.Config{Key: benchKey, Latency: c.latency}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(rounds) != 2 {
		t.Fatalf("%d rounds, want 2", len(rounds))
	}
	for _, r := range rounds {
		if len(r.llm) != len(cases) {
			t.Fatalf("%d results in a round, want one for each of %v", len(r.llm), cases)
		}
		for i, res := range append([]childResult{r.minimal}, r.llm...) {
			if res.wall <= 0 || res.cpu <= 0 || res.maxRSS <= 0 || res.first <= 0 || res.last < res.first || res.last > res.wall {
				t.Errorf("client %d: %+v; want a wall, CPU and RSS, and the requests within the wall", i-1, res)
			}
		}
		for i, c := range cases {
			if got := len(r.llm[i].runners); (c.runners > 1) != (got == c.runners) {
				t.Errorf("%s: %d runners' results", c, got)
			}
			if got := r.llm[i].server; (c.engine == "postgres") != (got > 0) {
				t.Errorf("%s: server CPU %v", c, got)
			}
		}
	}
}
