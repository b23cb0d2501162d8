package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// statusOf renders s as text and as StatusJSON.
func statusOf(t *testing.T, s jobs.Stats, prices jobs.Prices) (string, StatusJSON) {
	t.Helper()
	var text, js bytes.Buffer
	if err := WriteStatus(&text, s, prices); err != nil {
		t.Fatal(err)
	}
	if err := WriteStatusJSON(&js, s, prices); err != nil {
		t.Fatal(err)
	}
	var v StatusJSON
	if err := json.Unmarshal(js.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	return text.String(), v
}

// rowOf returns the value of the status row named name.
func rowOf(t *testing.T, text, name string) string {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimLeft(rest, " ")
		}
	}
	t.Fatalf("no row %q in:\n%s", name, text)
	return ""
}

// TestStatusRunAndLastEnd: status says whether a run is live and how the
// last one ended; a lock held by a run that is not live means it was
// killed.
func TestStatusRunAndLastEnd(t *testing.T) {
	at := fixtureCreated.Add(time.Hour)
	lock := jobs.LockOwner{Token: "tok-1", PID: 4242, Host: "host-a"}
	live := &jobs.RunState{Concurrency: 4, MaxConcurrency: 4, UpdatedAt: at}
	tests := []struct {
		name      string
		run       *jobs.RunState
		lock      jobs.LockOwner
		end       jobs.RunEnd
		message   string
		attempts  int
		wantRun   string
		wantEnd   string
		wantJSON  StatusJSONLastRun
		wantState string
	}{
		{name: "NeverRun", wantRun: "not live", wantEnd: "never run", wantState: etaNoRun},
		{name: "Finished", end: jobs.EndFinished, message: "1 request failed", attempts: 3, wantRun: "not live",
			wantEnd:  "finished at 2025-01-02T04:04:05Z: 1 request failed",
			wantJSON: StatusJSONLastRun{End: "finished", At: "2025-01-02T04:04:05.000Z", Message: "1 request failed"}, wantState: etaNoRun},
		{name: "Budget", end: jobs.EndBudget, message: "--max-cost 1 reached", attempts: 3, wantRun: "not live",
			wantEnd:  "budget reached at 2025-01-02T04:04:05Z: --max-cost 1 reached",
			wantJSON: StatusJSONLastRun{End: "budget", At: "2025-01-02T04:04:05.000Z", Message: "--max-cost 1 reached"}, wantState: etaNoRun},
		{name: "Fatal", end: jobs.EndFatal, attempts: 3, wantRun: "not live", wantEnd: "refused by the API at 2025-01-02T04:04:05Z",
			wantJSON: StatusJSONLastRun{End: "fatal", At: "2025-01-02T04:04:05.000Z"}, wantState: etaNoRun},
		{name: "Killed", lock: lock, end: jobs.EndInterrupted, attempts: 3, wantRun: "not live",
			wantEnd: "killed or crashed (last heartbeat 2025-01-02T04:03:55Z): pid 4242 on host-a stopped without ending its run",
			wantJSON: StatusJSONLastRun{End: "killed", At: "2025-01-02T04:03:55.000Z",
				Message: "pid 4242 on host-a stopped without ending its run"}, wantState: etaNoRun},
		{name: "LiveAfterAnInterruption", run: live, lock: lock, end: jobs.EndInterrupted, message: "interrupted by a signal",
			attempts: 3, wantRun: "live (pid 4242 on host-a)", wantEnd: "interrupted at 2025-01-02T04:04:05Z: interrupted by a signal",
			wantJSON:  StatusJSONLastRun{End: "interrupted", At: "2025-01-02T04:04:05.000Z", Message: "interrupted by a signal"},
			wantState: "unknown"},
		{name: "LiveFirstRun", run: live, lock: lock, wantRun: "live (pid 4242 on host-a)", wantEnd: "none before this run",
			wantState: "unknown"},
		{name: "RanBeforeEndsWereKept", attempts: 3, wantRun: "not live",
			wantEnd: "not recorded (the job ran before llmbatch kept how runs end)", wantState: etaNoRun},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fixtureStats(true)
			s.Run, s.Attempts = tt.run, tt.attempts
			s.Job.Lock, s.Job.LockHeartbeat = tt.lock, at.Add(-10*time.Second)
			if tt.end != "" {
				s.Job.LastEnd, s.Job.LastEndAt, s.Job.LastEndMessage = tt.end, at, tt.message
			}
			text, v := statusOf(t, s, jobs.Prices{})
			if got := rowOf(t, text, "run"); got != tt.wantRun {
				t.Errorf("run row %q, want %q", got, tt.wantRun)
			}
			if got := rowOf(t, text, "last end"); got != tt.wantEnd {
				t.Errorf("last end row %q, want %q", got, tt.wantEnd)
			}
			if v.RunLive != (tt.run != nil) || v.LastRun != tt.wantJSON {
				t.Errorf("run_live %v, last_run %+v; want %v, %+v", v.RunLive, v.LastRun, tt.run != nil, tt.wantJSON)
			}
			if v.ETA.State != tt.wantState {
				t.Errorf("eta.state %q, want %q", v.ETA.State, tt.wantState)
			}
		})
	}
}

// TestStatusRunning: while a run is live, running splits into the calls in
// flight and the requests claimed but not sent; without one, running
// requests are a dead run's orphans.
func TestStatusRunning(t *testing.T) {
	tests := []struct {
		name        string
		running     int
		run         *jobs.RunState
		want        string
		wantClaimed int
	}{
		{"Live", 300, &jobs.RunState{InFlight: 16}, "300: 16 in flight, 284 claimed", 284},
		{"LiveAllSent", 16, &jobs.RunState{InFlight: 16}, "16: 16 in flight, 0 claimed", 0},
		{"Orphans", 8, nil, "8 (claimed by a run that is gone; back to pending when the next run starts)", 0},
		{"None", 0, nil, "0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fixtureStats(true)
			s.Counts[jobs.StatusRunning], s.Run = tt.running, tt.run
			text, v := statusOf(t, s, jobs.Prices{})
			if got := rowOf(t, text, "running"); got != tt.want {
				t.Errorf("running row %q, want %q", got, tt.want)
			}
			if v.Counts.Running != tt.running {
				t.Errorf("counts.running %d, want %d", v.Counts.Running, tt.running)
			}
			if tt.run != nil && v.Run.Claimed != tt.wantClaimed {
				t.Errorf("run.claimed %d, want %d", v.Run.Claimed, tt.wantClaimed)
			}
		})
	}
}

// TestStatusETAOnlyWhileLive: a job with requests left and a recent rate
// gets no ETA when no run is live: nothing is being done.
func TestStatusETAOnlyWhileLive(t *testing.T) {
	s := fixtureActivity()
	s.Run = nil
	text, v := statusOf(t, s, jobs.Prices{})
	if got, want := rowOf(t, text, "eta"), "none: no run is live (128 requests left)"; got != want {
		t.Errorf("eta row %q, want %q", got, want)
	}
	if want := (StatusJSONETA{State: etaNoRun, Remaining: 128}); v.ETA != want {
		t.Errorf("eta %+v, want %+v", v.ETA, want)
	}
	s.Counts = map[jobs.Status]int{jobs.StatusPending: 1}
	if got, want := rowOf(t, func() string { text, _ := statusOf(t, s, jobs.Prices{}); return text }(), "eta"),
		"none: no run is live (1 request left)"; got != want {
		t.Errorf("eta row %q, want %q", got, want)
	}
}

// fixtureWithoutUsage is fixtureActivity where 3 of r1's results and all
// of v3's reported no usage.
func fixtureWithoutUsage() jobs.Stats {
	s := fixtureActivity()
	s.Models[0].WithoutUsage = 3
	s.Models[1].Usage, s.Models[1].WithoutUsage = jobs.Usage{}, 250
	s.Usage = s.Models[0].Usage
	s.ResultsWithoutUsage = 253
	return s
}

// TestStatusWithoutUsage: results without usage make the tokens and the
// cost lower bounds, in the text, the model table and the JSON.
func TestStatusWithoutUsage(t *testing.T) {
	both := jobs.Prices{Currency: "USD", ByModel: map[string]jobs.Price{
		"deepseek/deepseek-r1": {Input: 1, Output: 2}, "deepseek/deepseek-v3": {Input: 1, Output: 1}}}
	var text, js bytes.Buffer
	if err := WriteStatus(&text, fixtureWithoutUsage(), fixturePrices); err != nil {
		t.Fatal(err)
	}
	if err := WriteStatusJSON(&js, fixtureWithoutUsage(), fixturePrices); err != nil {
		t.Fatal(err)
	}
	golden(t, "status_without_usage.txt", text.Bytes())
	golden(t, "status_without_usage.json", js.Bytes())
	for _, want := range []string{
		"tokens     at least prompt 6000, completion 40000, reasoning 30050, cached 4096, total 46000 (253 results reported no usage)\n",
		"  COST          NO USAGE\n",
		"deepseek/deepseek-r1  600      ≥ 6000   ≥ 40000     ≥ 30050    ≥ 4096   ≥ 46000  ≥ 0.0892 USD  3\n",
		"deepseek/deepseek-v3  250      unknown  unknown     unknown    unknown  unknown  unknown       250\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, text.String())
		}
	}
	var v StatusJSON
	if err := json.Unmarshal(js.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v.ResultsWithoutUsage != 253 || v.Models[0].ResultsWithoutUsage != 3 || v.Models[1].ResultsWithoutUsage != 250 {
		t.Errorf("results_without_usage %d, per model %d and %d; want 253, 3 and 250",
			v.ResultsWithoutUsage, v.Models[0].ResultsWithoutUsage, v.Models[1].ResultsWithoutUsage)
	}

	tests := []struct {
		name   string
		s      jobs.Stats
		prices jobs.Prices
		want   string
	}{
		{"AllPricedSomeWithout", func() jobs.Stats {
			s := fixtureActivity()
			s.Models[1].WithoutUsage, s.ResultsWithoutUsage = 1, 1
			return s
		}(), both, "≥ 0.0983 USD (1 result reported no usage)"},
		{"PricedModelHasUsage", func() jobs.Stats {
			s := fixtureActivity()
			s.Models[1].WithoutUsage, s.ResultsWithoutUsage = 2, 2
			return s
		}(), fixturePrices, "0.0892 USD + unknown (no price or no usage for deepseek/deepseek-v3)"},
		{"AllWithoutUsage", fixtureWithoutUsage(), both, "0.0860 USD + unknown (no price or no usage for deepseek/deepseek-v3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := costText(tt.s, tt.prices); got != tt.want {
				t.Errorf("costText = %q, want %q", got, tt.want)
			}
		})
	}
}
