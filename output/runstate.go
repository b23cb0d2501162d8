package output

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// millisRFC3339 is RFC 3339 with milliseconds: pauses are often shorter
// than a second.
const millisRFC3339 = "2006-01-02T15:04:05.000Z07:00"

// writeRun writes the rows of a live run's pacing, if there is one:
//
//	pacing     concurrency 12 of 64, 10 in flight (as of 2025-01-02T03:04:05.000Z)
//	limits     rpm 3000, tpm none; learned from the provider: 2700 rpm
//	paused     until 2025-01-02T03:04:06.500Z (Retry-After or x-ratelimit reset)
//	paused     127.0.0.1:1 unreachable (connection refused) since 2025-01-02T03:02:00.000Z; next probe 2025-01-02T03:04:40.000Z
func writeRun(tw *tabwriter.Writer, r *jobs.RunState) {
	if r == nil {
		return
	}
	row(tw, "pacing", fmt.Sprintf("concurrency %d of %d, %d in flight (as of %s)",
		r.Concurrency, r.MaxConcurrency, r.InFlight, formatMillis(r.UpdatedAt)))
	limits := fmt.Sprintf("rpm %s, tpm %s", limitText(r.RPM), limitText(r.TPM))
	if r.AdaptiveRPM > 0 {
		limits += fmt.Sprintf("; learned from the provider: %d rpm", r.AdaptiveRPM)
	}
	row(tw, "limits", limits)
	if !r.PausedUntil.IsZero() {
		row(tw, "paused", fmt.Sprintf("until %s (Retry-After or x-ratelimit reset)", formatMillis(r.PausedUntil)))
	}
	if r.Outage != "" {
		row(tw, "paused", outageText(r))
	}
}

// outageText says why a run stopped dispatching as a whole, since when,
// and when it probes the endpoint next.
func outageText(r *jobs.RunState) string {
	s := r.Outage
	if !r.OutageSince.IsZero() {
		s += " since " + formatMillis(r.OutageSince)
	}
	if !r.NextProbe.IsZero() {
		s += "; next probe " + formatMillis(r.NextProbe)
	}
	return s
}

func limitText(n int) string {
	if n <= 0 {
		return "none"
	}
	return fmt.Sprint(n)
}

func formatMillis(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(millisRFC3339)
}

// StatusJSONRun is the "run" member of StatusJSON: how the live run working
// the job paces itself. Every member is always present. in_flight counts
// the calls in flight and claimed the running requests not sent yet
// (counts.running less in_flight, at least 0); rpm and tpm are the configured limits and
// adaptive_rpm the rate learned from the provider's 429s and 503s, 0
// meaning none; paused_until is empty when dispatch is not paused for a
// Retry-After; outage, when not empty, says why dispatch stopped as a
// whole (calls fail without a usable answer: one request at a time probes
// the endpoint), since outage_since, next at next_probe; times are RFC
// 3339 with milliseconds.
//
//	"run": {
//	  "concurrency": 12, "max_concurrency": 64, "in_flight": 10, "claimed": 2,
//	  "rpm": 3000, "tpm": 0, "adaptive_rpm": 2700,
//	  "paused_until": "2025-01-02T03:04:06.500Z", "updated_at": "2025-01-02T03:04:05.000Z",
//	  "outage": "", "outage_since": "", "next_probe": ""
//	}
type StatusJSONRun struct {
	Concurrency    int    `json:"concurrency"`
	MaxConcurrency int    `json:"max_concurrency"`
	InFlight       int    `json:"in_flight"`
	Claimed        int    `json:"claimed"`
	RPM            int    `json:"rpm"`
	TPM            int    `json:"tpm"`
	AdaptiveRPM    int    `json:"adaptive_rpm"`
	PausedUntil    string `json:"paused_until"`
	UpdatedAt      string `json:"updated_at"`
	Outage         string `json:"outage"`
	OutageSince    string `json:"outage_since"`
	NextProbe      string `json:"next_probe"`
}

func newStatusJSONRun(s jobs.Stats) *StatusJSONRun {
	r := s.Run
	if r == nil {
		return nil
	}
	running := s.Counts[jobs.StatusRunning]
	inFlight := min(r.InFlight, running)
	return &StatusJSONRun{Concurrency: r.Concurrency, MaxConcurrency: r.MaxConcurrency, InFlight: r.InFlight,
		Claimed: running - inFlight, RPM: r.RPM, TPM: r.TPM, AdaptiveRPM: r.AdaptiveRPM,
		PausedUntil: formatMillis(r.PausedUntil), UpdatedAt: formatMillis(r.UpdatedAt),
		Outage: r.Outage, OutageSince: formatMillis(r.OutageSince), NextProbe: formatMillis(r.NextProbe)}
}
