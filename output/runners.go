package output

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// StatusJSONRunner is one run working a job that several runs share
// (PostgreSQL, jobs.Runners), in status --json's "runners": its host and
// pid, how many requests it holds (claimed and not yet recorded), when it
// started and when it last renewed its leases (RFC 3339 in UTC).
type StatusJSONRunner struct {
	Host          string `json:"host"`
	PID           int    `json:"pid"`
	Running       int    `json:"running"`
	StartedAt     string `json:"started_at"`
	LastHeartbeat string `json:"last_heartbeat"`
}

func runnersJSON(list []jobs.RunnerInfo) []StatusJSONRunner {
	out := make([]StatusJSONRunner, 0, len(list))
	for _, r := range list {
		out = append(out, StatusJSONRunner{Host: r.Owner.Host, PID: r.Owner.PID, Running: r.Running,
			StartedAt: utcTime(r.StartedAt), LastHeartbeat: utcTime(r.Heartbeat)})
	}
	return out
}

// WriteStatusJSONRunners is WriteStatusJSON with the runs working the job
// listed in "runners", oldest first.
func WriteStatusJSONRunners(w io.Writer, s jobs.Stats, prices jobs.Prices, runners []jobs.RunnerInfo) error {
	v := NewStatusJSON(s, prices)
	v.Runners = runnersJSON(runners)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteRunners writes the table of the runs working a job that several
// runs share, for status: host, pid, the requests each holds, when it
// started, and how long before now it last renewed its leases. Nothing
// when none is live.
//
//	runners (2 live)
//	  HOST    PID   RUNNING  STARTED               LAST HEARTBEAT
//	  host-a  4242  8        2025-01-02T03:04:05Z  1s ago
func WriteRunners(w io.Writer, runners []jobs.RunnerInfo, now time.Time) error {
	if len(runners) == 0 {
		return nil
	}
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "\nrunners (%d live)\n", len(runners))
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  HOST\tPID\tRUNNING\tSTARTED\tLAST HEARTBEAT")
	for _, r := range runners {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s\n", cellReplacer.Replace(dash(r.Owner.Host)), r.Owner.PID, r.Running,
			formatTime(r.StartedAt), beatAge(now.Sub(r.Heartbeat)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return ew.err
}

// beatAge is how long ago a heartbeat was, to the second; the database's
// clock, which stamps it, may run a little ahead of this host's.
func beatAge(d time.Duration) string {
	if d < time.Second {
		return "just now"
	}
	return d.Round(time.Second).String() + " ago"
}
