package jobs

import (
	"testing"
	"time"
)

func TestStatsETA(t *testing.T) {
	busy := Throughput{Window: 5 * time.Minute, Span: 100 * time.Second, Requests: 250} // 2.5 req/s
	tests := []struct {
		name   string
		counts map[Status]int
		state  JobState
		last5m Throughput
		want   ETA
	}{
		{"Estimated", map[Status]int{StatusPending: 995, StatusRunning: 5}, JobActive, busy,
			ETA{State: ETAEstimated, Remaining: 1000, Left: 400 * time.Second}},
		{"RoundedToSeconds", map[Status]int{StatusPending: 1}, JobActive, busy,
			ETA{State: ETAEstimated, Remaining: 1, Left: 0}},
		{"Idle", map[Status]int{StatusPending: 3}, JobActive, Throughput{Window: 5 * time.Minute},
			ETA{State: ETAUnknown, Remaining: 3}},
		{"Done", map[Status]int{StatusSucceeded: 4, StatusFailed: 1}, JobActive, busy, ETA{State: ETADone}},
		{"Cancelled", map[Status]int{StatusRunning: 2, StatusCancelled: 8}, JobCancelled, busy, ETA{State: ETADone}},
		// One request in five minutes and 40 million left: 380 years, more
		// than a time.Duration holds; it shows as the longest ETA.
		{"Centuries", map[Status]int{StatusPending: 40_000_000}, JobActive,
			Throughput{Window: 5 * time.Minute, Span: 5 * time.Minute, Requests: 1},
			ETA{State: ETAEstimated, Remaining: 40_000_000, Left: maxETA}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Stats{Job: Job{State: tt.state}, Counts: tt.counts, Last5m: tt.last5m}
			if got := s.ETA(); got != tt.want {
				t.Errorf("ETA() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStatsOverall(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)
	s := Stats{Counts: map[Status]int{StatusSucceeded: 90, StatusFailed: 10}, Cached: 40,
		Usage: Usage{Known: true, TotalTokens: 6000}, FirstAttempt: t0, LastAttempt: t0.Add(time.Minute)}
	got := s.Overall()
	if got.Requests != 60 || got.RequestsPerSecond() != 1 || got.TokensPerSecond() != 100 {
		t.Errorf("Overall() = %+v (%.2f req/s, %.2f tok/s), want 60 requests (cached left out), 1 req/s, 100 tok/s",
			got, got.RequestsPerSecond(), got.TokensPerSecond())
	}
	if (Stats{}).Overall() != (Throughput{}) {
		t.Error("Overall() of a job without attempts is not zero")
	}
}

// TestStatsOverallOnlyWhatWasSent: lines kept invalid at import failed
// without being sent, so they are no completion of the API; a job whose
// attempts have all been retried so far has completed nothing, and an
// idle window has no span (docs/status.md: span_ms "0 when idle").
func TestStatsOverallOnlyWhatWasSent(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)
	s := Stats{Counts: map[Status]int{StatusSucceeded: 30, StatusFailed: 10, StatusPending: 5},
		Errors:       []ClassCount{{Class: ClassInvalidInput, Count: 4}, {Class: ClassInvalidRequest, Count: 6}},
		FirstAttempt: t0, LastAttempt: t0.Add(time.Minute)}
	if got := s.Overall(); got.Requests != 36 {
		t.Errorf("Overall().Requests = %d, want 36: 30 succeeded and the 6 failed that were sent", got.Requests)
	}
	retried := Stats{Counts: map[Status]int{StatusPending: 5}, FirstAttempt: t0, LastAttempt: t0.Add(time.Minute)}
	if got := retried.Overall(); !got.Idle() || got.Span != 0 {
		t.Errorf("Overall() with nothing completed = %+v, want idle with no span", got)
	}
}
