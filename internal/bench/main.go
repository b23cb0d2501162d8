// Command bench measures llmbatch against the fake API of internal/fakeapi
// on loopback and prints each figure of issue 4 beside its target:
//
//	go run ./internal/bench                      # dispatch, latency, import (a few minutes on 2 cores)
//	go run ./internal/bench -huge                # also run memory and resume start-up (1,000,000 requests)
//	go run ./internal/bench -only import -import-lines 100000,1000000
//	go run ./internal/bench -only ratelimit,scattered  # a limit found; scattered 429s cost little
//	go run ./internal/bench -only binary,binlatency,streams  # the binary from start to exit (issue 17)
//	go run ./internal/bench -only binary,binlatency -engines sqlite,postgres -runners 1,3  # PostgreSQL beside SQLite
//	go run ./internal/bench -profile-summary FILE     # where a CPU profile's time goes, by category
//	go run ./internal/bench -list                # the scenarios
//
// The dispatch and latency scenarios run the real pipeline in this process
// (input.Open → store.Import → worker.Runner, with a store file on disk)
// beside a minimal client without persistence, against a fake server in the
// same process. The import, memory and resume scenarios run the llmbatch
// binary (built into a temporary directory, or -bin) as a child process, so
// that its peak RSS and CPU time are its own.
//
// Machines are noisy: compare the figures of one run with each other, not
// with another run's.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"
)

// config holds the flags every scenario may read.
type config struct {
	only        string
	huge        bool
	list        bool
	concurrency int
	rounds      int
	dispatchN   int
	latencyN    int
	latency     time.Duration
	binLatencyN string
	importLines string
	hugeN       int
	bin         string
	dir         string
	keep        bool
	cpuprofile  string
	memprofile  string
	best        bool
	profileSum  string
	child       string
	binProfile  string
	engines     string
	runners     string
	streams     streamsConfig
}

func main() {
	var c config
	flag.StringVar(&c.only, "only", "", "comma-separated `scenarios` to run (default: all, the huge ones only with -huge)")
	flag.BoolVar(&c.huge, "huge", false, "also run the scenarios that take 1,000,000 requests (several minutes)")
	flag.BoolVar(&c.list, "list", false, "list the scenarios and exit")
	flag.IntVar(&c.concurrency, "concurrency", 64, "requests in flight, for llmbatch and the minimal client")
	flag.IntVar(&c.rounds, "rounds", 0, "runs of the minimal client and of llmbatch, in turn, in the dispatch, latency, binary and streams scenarios, the median counting (default 5); runs of each case of scattered, the best counting (default 2)")
	flag.BoolVar(&c.best, "best", false, "keep the best round of each client instead of the median (the first four passes of BENCHMARKS.md did)")
	flag.IntVar(&c.dispatchN, "dispatch-requests", 20_000, "requests of the dispatch scenario")
	flag.IntVar(&c.latencyN, "latency-requests", 6_400, "requests of the latency scenario")
	flag.DurationVar(&c.latency, "latency", 50*time.Millisecond, "server latency of the latency scenario")
	flag.StringVar(&c.binLatencyN, "binlatency-requests", "5000,20000", "comma-separated `sizes` (requests) of the binlatency scenario")
	flag.StringVar(&c.importLines, "import-lines", "100000,1000000", "comma-separated file sizes (lines) of the import scenario")
	flag.IntVar(&c.hugeN, "huge-requests", 1_000_000, "requests of the memory and resume scenarios")
	flag.StringVar(&c.bin, "bin", "", "llmbatch binary to run (default: go build into the work directory)")
	flag.StringVar(&c.dir, "dir", "", "work `directory` for input files and databases (default: a new one under $TMPDIR)")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the in-process llmbatch dispatch run to `FILE`")
	flag.StringVar(&c.memprofile, "memprofile", "", "write the allocations of the in-process llmbatch dispatch run to `FILE` (and those before it to FILE.base: go tool pprof -sample_index=alloc_space -diff_base FILE.base FILE)")
	flag.StringVar(&c.profileSum, "profile-summary", "", "print where the CPU of the profile `FILE` goes, by category (HTTP, SQLite, JSON, GC, ...), and exit")
	flag.StringVar(&c.child, "minimal-child", "", "internal: run the minimal client of the binary and streams scenarios in this process, as `JSON` says, and exit")
	flag.StringVar(&c.engines, "engines", "sqlite", "comma-separated storage `engines` of the binary and binlatency scenarios: sqlite, postgres (a fresh database a round on the server in $LLMBATCH_TEST_POSTGRES)")
	flag.StringVar(&c.runners, "runners", "1", "comma-separated `counts` of runners sharing the job in the binary and binlatency scenarios, each at -concurrency (PostgreSQL; SQLite runs one)")
	c.streams.flags()
	flag.StringVar(&c.binProfile, "bin-cpuprofile", "", "write a CPU profile of the binary's first llmbatch round of each case of the binary and streams scenarios to `PREFIX`-CASE.prof ($LLMBATCH_CPUPROFILE)")
	flag.Parse()
	if os.Getenv("GOMAXPROCS") == "" {
		// As the llmbatch binary sets it (main.go), for the in-process
		// runs and the minimal client, here or in a child.
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
	if c.child != "" {
		if err := runMinimalChild(c.child); err != nil {
			fmt.Fprintf(os.Stderr, "bench minimal client: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if c.profileSum != "" {
		if err := summarizeProfile(os.Stdout, c.profileSum); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if c.list {
		for _, s := range scenarios {
			huge := ""
			if s.Huge {
				huge = " (-huge)"
			}
			fmt.Printf("%-10s %s%s\n", s.Name, s.Doc, huge)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	chosen, err := choose(c)
	if err != nil {
		return err
	}
	e, err := newEnv(c)
	if err != nil {
		return err
	}
	defer e.close()
	fmt.Printf("llmbatch bench: %s, %d CPUs (GOMAXPROCS %d), %s; work dir %s\n",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), e.dir)
	failed := 0
	for _, s := range chosen {
		fmt.Printf("\n== %s: %s\n", s.Name, s.Doc)
		start := time.Now()
		if err := s.Run(ctx, e); err != nil {
			fmt.Printf("   error: %v\n", err)
			failed++
		}
		fmt.Printf("   (%s)\n", time.Since(start).Round(100*time.Millisecond))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fmt.Printf("\n%d targets met, %d missed\n", e.met, e.missed)
	if failed > 0 {
		return fmt.Errorf("%d scenarios failed", failed)
	}
	return nil
}

// choose returns the scenarios -only and -huge select, in registry order.
func choose(c config) ([]Scenario, error) {
	if c.only == "" {
		var out []Scenario
		for _, s := range scenarios {
			if !s.Huge || c.huge {
				out = append(out, s)
			}
		}
		return out, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(c.only, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var out []Scenario
	for _, s := range scenarios {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	for n := range want {
		return nil, fmt.Errorf("no scenario %q (see -list)", n)
	}
	return out, nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
