package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// liveRun is a run paced by --rpm, paused by a Retry-After, with a rate
// learned from the provider's 429s.
func liveRun() *jobs.RunState {
	saved := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return &jobs.RunState{Concurrency: 12, MaxConcurrency: 64, InFlight: 10, RPM: 3000, AdaptiveRPM: 2700,
		PausedUntil: saved.Add(1500 * time.Millisecond), UpdatedAt: saved}
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
		"run        concurrency 12 of 64, 10 in flight (as of 2025-01-02T03:04:05.000Z)\n",
		"limits     rpm 3000, tpm none; learned from the provider: 2700 rpm\n",
		"paused     until 2025-01-02T03:04:06.500Z",
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
	want := []string{"concurrency", "max_concurrency", "in_flight", "rpm", "tpm", "adaptive_rpm", "paused_until", "updated_at"}
	if got := objectKeys(t, mustMarshal(t, v.Run)); len(got) != len(want) {
		t.Errorf("run keys %q, want %q", got, want)
	}
	if got := string(v.Run["paused_until"]); got != `"2025-01-02T03:04:06.500Z"` {
		t.Errorf("paused_until = %s", got)
	}

	t.Run("NotPaused", func(t *testing.T) {
		s.Run.PausedUntil, s.Run.AdaptiveRPM, s.Run.RPM, s.Run.TPM = time.Time{}, 0, 0, 0
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
		if !strings.Contains(js.String(), `"paused_until": ""`) {
			t.Errorf("paused_until not empty:\n%s", js.String())
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
