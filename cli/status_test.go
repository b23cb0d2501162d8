package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/clitest"
	"github.com/llmbatch/llmbatch/internal/golden"

	"github.com/llmbatch/llmbatch/jobs"
)

func statusGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}

var goldenPrices = priceOptions{Prices: []string{"deepseek/deepseek-r1=0.55:2.19:0.14", "deepseek/deepseek-v3=0.27:1.10"}, Currency: "USD"}

// TestStatusGolden is `status --json` (and the table) of a job with
// successes, failures, retries and two models, read at a fixed time with
// no run live; then with one, whose ETA is told.
func TestStatusGolden(t *testing.T) {
	_, st, _ := clitest.GoldenJob(t)
	prices, err := goldenPrices.load()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file string
		json bool
	}{{"status_golden.json", true}, {"status_golden.txt", false}} {
		var out bytes.Buffer
		if err := runStatus(context.Background(), st, statusOptions{Job: "golden", JSON: tt.json}, prices, &out); err != nil {
			t.Fatal(err)
		}
		if _, offset := clitest.GoldenT0.In(time.Local).Zone(); !tt.json && offset != 0 {
			t.Logf("%s not compared: the table shows local times, and this zone is not UTC", tt.file)
			continue
		}
		statusGolden(t, tt.file, out.Bytes())
	}
	// A run is live (it holds the lock and saved its state): its ETA is
	// told.
	if err := st.Lock(context.Background(), 1, newOwner(), lockStale, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveRunState(context.Background(), 1, jobs.RunState{Concurrency: 1, MaxConcurrency: 1, UpdatedAt: st.Now()}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runStatus(context.Background(), st, statusOptions{Job: "golden", JSON: true}, prices, &out); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Counts     map[string]int `json:"counts"`
		Attempts   int            `json:"attempts"`
		Throughput struct {
			Last1m struct {
				Requests int `json:"requests"`
			} `json:"last_1m"`
			Last5m struct {
				Requests int     `json:"requests"`
				SpanMS   int64   `json:"span_ms"`
				Rate     float64 `json:"requests_per_second"`
			} `json:"last_5m"`
		} `json:"throughput"`
		ETA struct {
			State     string `json:"state"`
			Remaining int    `json:"remaining"`
			Seconds   int64  `json:"seconds"`
		} `json:"eta"`
		Cost struct {
			Total *float64 `json:"total"`
		} `json:"cost"`
		Errors []struct {
			Class string `json:"class"`
			Count int    `json:"count"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	// Completed in the last minute (t0+2m to t0+3m): q7 and q8, and q5's
	// and q6's second attempts; in five minutes: all 8, over the 170 s since
	// q1 started. The retried attempts of q5, q6 and q9 count in neither.
	if v.Counts["succeeded"] != 6 || v.Counts["failed"] != 2 || v.Counts["pending"] != 2 || v.Attempts != 11 {
		t.Errorf("counts %v, attempts %d; want 6 succeeded, 2 failed, 2 pending, 11 attempts", v.Counts, v.Attempts)
	}
	if v.Throughput.Last1m.Requests != 4 || v.Throughput.Last5m.Requests != 8 || v.Throughput.Last5m.SpanMS != 170000 {
		t.Errorf("throughput %+v; want 4 in the last minute, 8 over 170 s in five", v.Throughput)
	}
	if v.ETA.State != "estimated" || v.ETA.Remaining != 2 || v.ETA.Seconds != 43 { // 2 ÷ (8/170 s) = 42.5 s
		t.Errorf("eta %+v; want 2 left in 43 s", v.ETA)
	}
	if v.Cost.Total == nil {
		t.Error("cost.total is null with both models priced")
	}
	if len(v.Errors) != 3 || v.Errors[0].Class != "invalid_request" || v.Errors[0].Count != 2 {
		t.Errorf("errors %+v; want invalid_request ×2 first of 3 classes", v.Errors)
	}
}

// TestStatusRunLiveAndEnded reads, through the store, a job while a run
// works it (its lock held, its state saved: live, running split into in
// flight and claimed, paused by an outage), once that run is gone without
// ending (killed), and once a run ended cleanly.
func TestStatusRunLiveAndEnded(t *testing.T) {
	ctx := context.Background()
	_, st, clock := clitest.GoldenJob(t)
	owner := jobs.LockOwner{Token: "run-2", PID: 4242, Host: "host-a"}
	if err := st.Lock(ctx, 1, owner, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	clock.Set(clitest.GoldenT0.Add(200 * time.Second)) // the two pending requests are due
	if got := clitest.Claim(t, st, 1, 2); len(got) != 2 {
		t.Fatalf("claimed %d, want 2", len(got))
	}
	now := clock.Now()
	if err := st.SaveRunState(ctx, 1, jobs.RunState{Concurrency: 4, MaxConcurrency: 8, InFlight: 1, UpdatedAt: now,
		Outage: "127.0.0.1:1 unreachable (connection refused)", OutageSince: now.Add(-130 * time.Second),
		NextProbe: now.Add(40 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	read := func(t *testing.T) (string, map[string]any) {
		t.Helper()
		var text, js bytes.Buffer
		if err := runStatus(ctx, st, statusOptions{Job: "golden"}, jobs.Prices{}, &text); err != nil {
			t.Fatal(err)
		}
		if err := runStatus(ctx, st, statusOptions{Job: "golden", JSON: true}, jobs.Prices{}, &js); err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(js.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		return text.String(), v
	}
	lastRun := func(v map[string]any) string {
		lr := v["last_run"].(map[string]any)
		return fmt.Sprintf("%v at %v: %v", lr["end"], lr["at"], lr["message"])
	}

	t.Run("Live", func(t *testing.T) {
		text, v := read(t)
		for _, want := range []string{"run        live (pid 4242 on host-a)\n", "running    2: 1 in flight, 1 claimed\n",
			"paused     127.0.0.1:1 unreachable (connection refused) since "} {
			if !strings.Contains(text, want) {
				t.Errorf("status lacks %q:\n%s", want, text)
			}
		}
		run, _ := v["run"].(map[string]any)
		if v["run_live"] != true || run == nil || run["outage"] != "127.0.0.1:1 unreachable (connection refused)" || run["claimed"] != 1.0 {
			t.Errorf("run_live %v, run %v; want live, paused by the outage, 1 claimed", v["run_live"], run)
		}
		if got, want := lastRun(v), "interrupted at 2025-03-01T12:02:50.000Z: interrupted by a signal; 2 requests left"; got != want {
			t.Errorf("last_run %s, want %s (the run before)", got, want)
		}
	})
	t.Run("Killed", func(t *testing.T) {
		clock.Set(now.Add(jobs.RunStateStaleAfter + time.Second)) // the state is stale; the lock is still held
		text, v := read(t)
		for _, want := range []string{"run        not live\n", "last end   killed or crashed (last heartbeat ",
			"): pid 4242 on host-a stopped without ending its run\n", "eta        none: no run is live (2 requests left)\n",
			"running    2 (claimed by a run that is gone; back to pending when the next run starts)\n"} {
			if !strings.Contains(text, want) {
				t.Errorf("status lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, "pacing") || strings.Contains(text, "paused") {
			t.Errorf("status shows the pacing of a run that is gone:\n%s", text)
		}
		if got, want := lastRun(v), "killed at 2025-03-01T12:03:00.000Z: pid 4242 on host-a stopped without ending its run"; v["run_live"] != false || got != want {
			t.Errorf("run_live %v, last_run %s; want false, %s", v["run_live"], got, want)
		}
		if eta := v["eta"].(map[string]any); eta["state"] != "no_run" || eta["seconds"] != 0.0 {
			t.Errorf("eta %v, want no_run", eta)
		}
	})
	t.Run("Finished", func(t *testing.T) {
		if err := st.Unlock(ctx, 1, owner); err != nil {
			t.Fatal(err)
		}
		if err := st.EndRun(ctx, 1, jobs.EndBudget, "--max-cost 1 reached", clock.Now()); err != nil {
			t.Fatal(err)
		}
		text, v := read(t)
		if !strings.Contains(text, "last end   budget reached at ") || !strings.Contains(text, ": --max-cost 1 reached\n") {
			t.Errorf("status:\n%s", text)
		}
		if got, want := lastRun(v), "budget at 2025-03-01T12:03:26.000Z: --max-cost 1 reached"; got != want {
			t.Errorf("last_run %s, want %s", got, want)
		}
	})
}

// TestStatusResultsWithoutUsage: results recorded without usage are
// counted in status --json, in all and per model, and make the tokens and
// the cost lower bounds in the table.
func TestStatusResultsWithoutUsage(t *testing.T) {
	_, st, clock := clitest.GoldenJob(t)
	clock.Set(clitest.GoldenT0.Add(200 * time.Second))
	for _, r := range clitest.Claim(t, st, 1, 2) { // q9 (r1) and q10 (v3)
		clitest.Record(t, st, clitest.Success(r, clock.Now(), time.Second, 0, jobs.Usage{}))
	}
	prices, err := goldenPrices.load()
	if err != nil {
		t.Fatal(err)
	}
	var text, js bytes.Buffer
	if err := runStatus(context.Background(), st, statusOptions{Job: "golden"}, prices, &text); err != nil {
		t.Fatal(err)
	}
	if err := runStatus(context.Background(), st, statusOptions{Job: "golden", JSON: true}, prices, &js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tokens     at least prompt 120, completion 1370, reasoning 1060, cached 15, total 1490 (2 results reported no usage)\n",
		"cost       ≥ 0.0023 USD (2 results reported no usage)\n", "  NO USAGE\n", "≥ 783  ≥ 0.0016 USD  1\n"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, text.String())
		}
	}
	var v struct {
		Without int `json:"results_without_usage"`
		Models  []struct {
			Results int `json:"results"`
			Without int `json:"results_without_usage"`
		} `json:"models"`
	}
	if err := json.Unmarshal(js.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v.Without != 2 || len(v.Models) != 2 || v.Models[0].Without != 1 || v.Models[1].Without != 1 || v.Models[0].Results != 4 {
		t.Errorf("results_without_usage %d, models %+v; want 2, one of r1's 4 results and one of v3's", v.Without, v.Models)
	}
}

// reportWriter calls after with the number of each report runStatus
// writes; IsTerminal says what tty says.
type reportWriter struct {
	bytes.Buffer
	tty   bool
	n     int
	after func(n int)
}

func (w *reportWriter) IsTerminal() bool { return w.tty }

func (w *reportWriter) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if string(p) != clearScreen && string(p) != "\n" {
		w.n++
		w.after(w.n)
	}
	return n, err
}

func TestStatusWatch(t *testing.T) {
	prices := jobs.Prices{}
	t.Run("OffTerminalRepeatsUntilCancelled", func(t *testing.T) {
		_, st, _ := clitest.GoldenJob(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		w := &reportWriter{after: func(n int) {
			if n == 3 {
				cancel()
			}
		}}
		o := statusOptions{Job: "golden", JSON: true, Watch: true, Interval: time.Millisecond}
		if err := runStatus(ctx, st, o, prices, w); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(w.String()))
		docs := 0
		for dec.More() {
			var v map[string]any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("report %d: %v", docs+1, err)
			}
			docs++
		}
		if docs != 3 || strings.Contains(w.String(), clearScreen) || strings.Count(w.String(), "}\n\n{") != 2 {
			t.Errorf("%d reports, want 3 separated by a blank line and no clear:\n%s", docs, w.String())
		}
	})
	t.Run("TerminalClearsEachReport", func(t *testing.T) {
		_, st, _ := clitest.GoldenJob(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		w := &reportWriter{tty: true, after: func(n int) {
			if n == 2 {
				cancel()
			}
		}}
		if err := runStatus(ctx, st, statusOptions{Job: "golden", Watch: true, Interval: time.Millisecond}, prices, w); err != nil {
			t.Fatal(err)
		}
		if got := w.String(); strings.Count(got, clearScreen) != 2 || !strings.HasPrefix(got, clearScreen+"job ") {
			t.Errorf("terminal output, want 2 reports each after a clear:\n%q", got)
		}
	})
	t.Run("StopsWhenTheJobIsFinished", func(t *testing.T) {
		_, st, clock := clitest.GoldenJob(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only a guard against a hang
		defer cancel()
		w := &reportWriter{after: func(n int) {
			if n == 1 { // the last two requests succeed after the first report
				clock.Set(clitest.GoldenT0.Add(200 * time.Second))
				for _, r := range clitest.Claim(t, st, 1, 2) {
					clitest.Record(t, st, clitest.Success(r, clock.Now(), time.Second, 0, clitest.Usage(1, 1, 0, 0)))
				}
			}
		}}
		if err := runStatus(ctx, st, statusOptions{Job: "golden", Watch: true, Interval: time.Millisecond}, prices, w); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil || w.n != 2 || !strings.Contains(w.String(), "eta        done\n") {
			t.Errorf("watch ended by %v after %d reports, want on its own after 2, the last one done:\n%s", ctx.Err(), w.n, w.String())
		}
	})
	t.Run("CtrlCBeforeTheFirstReport", func(t *testing.T) {
		_, st, _ := clitest.GoldenJob(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // Ctrl-C while the first report is read
		w := &reportWriter{after: func(int) {}}
		if err := runStatus(ctx, st, statusOptions{Job: "golden", Watch: true, Interval: time.Millisecond}, prices, w); err != nil {
			t.Errorf("watch stopped by Ctrl-C before its first report: %v, want nil (exit 0)", err)
		}
	})
	t.Run("FinishedJobOnce", func(t *testing.T) {
		_, st, clock := clitest.GoldenJob(t)
		if _, err := st.Cancel(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		clock.Set(clitest.GoldenT0.Add(time.Hour))
		w := &reportWriter{after: func(int) {}}
		if err := runStatus(context.Background(), st, statusOptions{Job: "golden", Watch: true, Interval: time.Millisecond}, prices, w); err != nil {
			t.Fatal(err)
		}
		if w.n != 1 || !strings.Contains(w.String(), "rate       last 1m: idle; last 5m: idle\n") {
			t.Errorf("%d reports of a cancelled job, want 1, idle:\n%s", w.n, w.String())
		}
	})
}

// TestStatusCLI runs status through the command line: prices as flags, a
// bad --interval refused.
func TestStatusCLI(t *testing.T) {
	db, st, _ := clitest.GoldenJob(t)
	st.Close()
	res := runCLI(t, nil, "--db", db, "status", "golden", "--json", "--price", "deepseek/deepseek-r1=0.55:2.19", "--currency", "EUR")
	if res.Code != 0 {
		t.Fatalf("status: exit %d: %s", res.Code, res.Stderr)
	}
	var v statusCostJSON
	if err := json.Unmarshal([]byte(res.Stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Cost.Currency != "EUR" || v.Cost.Total != nil || len(v.Cost.Unpriced) != 1 || v.Models[0].Cost == nil {
		t.Errorf("cost %+v, models %+v; want r1 priced in EUR, v3 unpriced, total null", v.Cost, v.Models)
	}
	res = runCLI(t, nil, "--db", db, "status", "--watch", "--interval", "0s", "golden")
	if res.Code != 1 || !strings.Contains(res.Stderr, "--interval") {
		t.Errorf("status --watch --interval 0s: exit %d, %q; want 1 naming --interval", res.Code, res.Stderr)
	}
	res = runCLI(t, nil, "--db", db, "status", "--price", "nonsense", "golden")
	if res.Code != 1 || !strings.Contains(res.Stderr, "nonsense") {
		t.Errorf("status --price nonsense: exit %d, %q; want 1", res.Code, res.Stderr)
	}
}

// statusCostJSON is the part of status --json TestStatusCLI reads.
type statusCostJSON struct {
	Cost struct {
		Currency string   `json:"currency"`
		Total    *float64 `json:"total"`
		Unpriced []string `json:"unpriced_models"`
	} `json:"cost"`
	Models []struct {
		Cost *float64 `json:"cost"`
	} `json:"models"`
}
