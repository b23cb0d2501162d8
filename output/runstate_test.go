package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// liveRun is a run paced by --rpm, paused by a Retry-After and by an
// outage, with a rate learned from the provider's 429s.
func liveRun() *jobs.RunState {
	saved := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return &jobs.RunState{Concurrency: 12, MaxConcurrency: 64, InFlight: 10, RPM: 3000, AdaptiveRPM: 2700,
		PausedUntil: saved.Add(1500 * time.Millisecond), UpdatedAt: saved,
		Outage: "127.0.0.1:1 unreachable (connection refused)", OutageSince: saved.Add(-130 * time.Second),
		NextProbe: saved.Add(40 * time.Second)}
}

func TestWriteStatusLiveRun(t *testing.T) {
	s := fixtureStats(true)
	s.Run = liveRun()
	var text, js bytes.Buffer
	if err := WriteStatus(&text, s, jobs.Prices{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteStatusJSON(&js, s, jobs.Prices{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "status_live_run.txt", text.Bytes())
	golden(t, "status_live_run.json", js.Bytes())
	for _, want := range []string{
		"run        live\n",
		"running    8: 8 in flight, 0 claimed\n", // 10 in flight as saved, 8 running as counted since
		"pacing     concurrency 12 of 64, 10 in flight (as of 2025-01-02T03:04:05.000Z)\n",
		"limits     rpm 3000, tpm none; learned from the provider: 2700 rpm\n",
		"paused     until 2025-01-02T03:04:06.500Z",
		"paused     127.0.0.1:1 unreachable (connection refused) since 2025-01-02T03:01:55.000Z; next probe 2025-01-02T03:04:45.000Z\n",
		"eta        unknown (128 requests left, none completed in the last 5 minutes)\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, text.String())
		}
	}
	var v struct {
		Run map[string]json.RawMessage `json:"run"`
	}
	if err := json.Unmarshal(js.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	want := []string{"concurrency", "max_concurrency", "in_flight", "claimed", "rpm", "tpm", "adaptive_rpm", "paused_until",
		"updated_at", "outage", "outage_since", "next_probe"}
	if got := objectKeys(t, mustMarshal(t, v.Run)); len(got) != len(want) {
		t.Errorf("run keys %q, want %q", got, want)
	}
	for key, want := range map[string]string{"paused_until": `"2025-01-02T03:04:06.500Z"`,
		"outage": `"127.0.0.1:1 unreachable (connection refused)"`, "outage_since": `"2025-01-02T03:01:55.000Z"`,
		"next_probe": `"2025-01-02T03:04:45.000Z"`, "claimed": "0", "in_flight": "10"} {
		if got := string(v.Run[key]); got != want {
			t.Errorf("run.%s = %s, want %s", key, got, want)
		}
	}

	t.Run("NotPaused", func(t *testing.T) {
		s.Run.PausedUntil, s.Run.AdaptiveRPM, s.Run.RPM, s.Run.TPM = time.Time{}, 0, 0, 0
		s.Run.Outage, s.Run.OutageSince, s.Run.NextProbe = "", time.Time{}, time.Time{}
		var text, js bytes.Buffer
		if err := WriteStatus(&text, s, jobs.Prices{}); err != nil {
			t.Fatal(err)
		}
		if out := text.String(); strings.Contains(out, "paused") || !strings.Contains(out, "limits     rpm none, tpm none\n") {
			t.Errorf("status of an unpaused run without limits:\n%s", out)
		}
		if err := WriteStatusJSON(&js, s, jobs.Prices{}); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"paused_until": ""`, `"outage": ""`, `"outage_since": ""`, `"next_probe": ""`} {
			if !strings.Contains(js.String(), want) {
				t.Errorf("%s not empty:\n%s", want, js.String())
			}
		}
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
