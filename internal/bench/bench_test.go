package main

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

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
`)
	samples, err := parseTraces(out)
	if err != nil || len(samples) != 4 {
		t.Fatalf("parseTraces: %d samples, %v; want 4", len(samples), err)
	}
	wantValues := []time.Duration{10 * time.Millisecond, 1200 * time.Millisecond, 30 * time.Millisecond, 20 * time.Millisecond}
	wantNames := []string{"GC", "SQLite", "syscalls", "JSON"}
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
