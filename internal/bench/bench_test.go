package main

import (
	"context"
	"slices"
	"testing"
	"time"
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
	minimal, llm, err := compare(context.Background(), e, 300, time.Millisecond, "")
	if err != nil {
		t.Fatal(err)
	}
	if minimal.n != 300 || llm.n != 300 || minimal.rate() <= 0 || llm.rate() <= 0 || llm.outcomes != 300 {
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
