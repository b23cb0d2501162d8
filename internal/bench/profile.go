package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A CPU profile's summary: each sample goes to the first category whose
// rule matches its stack, so the shares add up to the whole. The fake
// server and the GC come first, since they own whatever they call; then
// syscalls and wake-ups made from Go (SQLite's are inside its cgo calls),
// SQLite, JSON, and the rest by what the sample's stack holds.
//
//	go run ./internal/bench -profile-summary FILE   # FILE from -cpuprofile or $LLMBATCH_CPUPROFILE
type category struct {
	name string
	// any matches when a frame of the stack has one of these substrings;
	// leaf when the innermost frame has one.
	any, leaf []string
}

var categories = []category{
	{name: "fake server (in the harness; both clients pay it)",
		any: []string{"fakeapi.", "net/http.(*conn).", "net/http.(*Server).", "net/http.(*response)."}},
	{name: "GC (marking, sweeping, assists, scavenging)",
		any: []string{"runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep", "runtime.bgscavenge",
			"runtime.gcStart", "runtime.sweepone", "runtime.(*mheap).reclaim", "runtime.gcMarkDone"}},
	{name: "syscalls (socket reads and writes, other)",
		leaf: []string{"syscall.", "internal/runtime/syscall"}},
	{name: "wake-ups (futex, epoll, timers' sleeps)",
		leaf: []string{"runtime.futex", "runtime.epollwait", "runtime.usleep", "runtime.osyield", "runtime.nanosleep"}},
	{name: "SQLite and cgo (database/sql, go-sqlite3, the store)",
		any: []string{"mattn/go-sqlite3", "database/sql", "runtime.cgocall", "store/sqlite."}},
	{name: "PostgreSQL client (pgx, pgxpool, store/postgres; not its syscalls)",
		any: []string{"jackc/pgx", "jackc/puddle", "store/postgres."}},
	{name: "JSON (answers, streams, bodies)",
		any: []string{"encoding/json", "jsonscan.", "worker.parseResponse", "worker.scanResponse", "worker.(*scanner)",
			"worker.(*assembler)", "worker.(*merger)", "worker.(*jsonWriter)", "worker.prepareBody", "jobs.Lookup",
			"jobs.WithMember", "jobs.WithoutMembers"}},
	{name: "HTTP client and SSE reading (net/http, net, bufio, textproto; not their syscalls)",
		any: []string{"net/http.", "net.", "bufio.", "net/textproto.", "internal/poll.", "mime.", "worker.(*sseReader)"}},
	{name: "channels, select and the scheduler",
		any: []string{"runtime.chansend", "runtime.chanrecv", "runtime.selectgo", "runtime.schedule", "runtime.findRunnable",
			"runtime.park_m", "runtime.goready", "runtime.ready", "runtime.netpoll", "runtime.mcall", "runtime.gopark",
			"runtime.lock2", "runtime.unlock2", "runtime.notewakeup", "runtime.wakep", "runtime.startm", "runtime.stopm",
			"sync.(*Mutex)", "internal/sync.(*Mutex)", "runtime.semacquire", "runtime.semrelease", "context."}},
	{name: "allocation elsewhere (mallocgc, growslice, memclr)",
		any: []string{"runtime.mallocgc", "runtime.newobject", "runtime.growslice", "runtime.makeslice", "runtime.memclr"}},
	{name: "the runner and the rest", any: []string{""}},
}

// summarizeProfile prints the categories' shares of a CPU profile, and
// its heaviest functions by flat time, read through `go tool pprof`.
func summarizeProfile(w io.Writer, path string) error {
	out, err := exec.Command("go", "tool", "pprof", "-traces", path).Output()
	if err != nil {
		return fmt.Errorf("go tool pprof -traces %s: %w", path, err)
	}
	samples, err := parseTraces(out)
	if err != nil {
		return err
	}
	shares := make([]time.Duration, len(categories))
	var total time.Duration
	for _, s := range samples {
		shares[categorize(s.stack)] += s.value
		total += s.value
	}
	fmt.Fprintf(w, "%s: %s of samples\n", path, total.Round(10*time.Millisecond))
	for i, c := range categories {
		fmt.Fprintf(w, "  %5.1f %%  %s\n", 100*shares[i].Seconds()/max(total.Seconds(), 1e-9), c.name)
	}
	fmt.Fprintln(w, "heaviest functions (flat):")
	for _, f := range topFlat(samples, 12) {
		fmt.Fprintf(w, "  %5.1f %%  %s\n", 100*f.value.Seconds()/max(total.Seconds(), 1e-9), f.name)
	}
	return nil
}

// sample is one stack of the profile with its CPU time, leaf first.
type sample struct {
	value time.Duration
	stack []string
}

// parseTraces reads the text of `go tool pprof -traces`: blocks split by
// lines of dashes, the first line of each with the time before the leaf.
func parseTraces(out []byte) ([]sample, error) {
	var samples []sample
	var cur *sample
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "-----------+"):
			cur = nil
		case cur == nil && strings.HasPrefix(line, " "):
			fields := strings.Fields(line)
			if len(fields) < 2 {
				continue
			}
			d, err := parseDuration(fields[0])
			if err != nil {
				continue // the header's lines
			}
			samples = append(samples, sample{value: d, stack: []string{strings.Join(fields[1:], " ")}})
			cur = &samples[len(samples)-1]
		case cur != nil && strings.TrimSpace(line) != "":
			cur.stack = append(cur.stack, strings.TrimSpace(line))
		}
	}
	return samples, sc.Err()
}

// parseDuration reads pprof's times: "10ms", "1.20s", "500us".
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	if v, ok := strings.CutSuffix(s, "us"); ok {
		f, err := strconv.ParseFloat(v, 64)
		return time.Duration(f * float64(time.Microsecond)), err
	}
	return 0, fmt.Errorf("not a time: %q", s)
}

func categorize(stack []string) int {
	for i, c := range categories {
		for _, sub := range c.leaf {
			if strings.Contains(stack[0], sub) {
				return i
			}
		}
		for _, sub := range c.any {
			for _, f := range stack {
				if strings.Contains(f, sub) {
					return i
				}
			}
		}
	}
	return len(categories) - 1
}

type flat struct {
	name  string
	value time.Duration
}

func topFlat(samples []sample, n int) []flat {
	by := map[string]time.Duration{}
	for _, s := range samples {
		by[s.stack[0]] += s.value
	}
	out := make([]flat, 0, len(by))
	for name, v := range by {
		out = append(out, flat{name, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].value > out[j].value })
	return out[:min(n, len(out))]
}
