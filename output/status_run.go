package output

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// lastRun is how the job's last run ended, as status tells it.
type lastRun struct {
	// End is "" while no run has ended.
	End     jobs.RunEnd
	At      time.Time
	Message string
}

// lastRunOf is the end the job stored, unless a run holds the job's lock
// without being live: that run is gone without writing its end, so it was
// killed or crashed, last seen at its lock's heartbeat. While a run is
// live, it is the end of the run before it.
func lastRunOf(s jobs.Stats) lastRun {
	j := s.Job
	if s.Run == nil && j.Lock.Token != "" {
		return lastRun{End: jobs.EndKilled, At: j.LockHeartbeat,
			Message: fmt.Sprintf("%s stopped without ending its run", ownerText(j.Lock))}
	}
	return lastRun{End: j.LastEnd, At: j.LastEndAt, Message: j.LastEndMessage}
}

func ownerText(o jobs.LockOwner) string {
	if o.Host == "" {
		return fmt.Sprintf("pid %d", o.PID)
	}
	return fmt.Sprintf("pid %d on %s", o.PID, o.Host)
}

// endNames are the words status says a run ended with.
var endNames = map[jobs.RunEnd]string{
	jobs.EndFinished:    "finished",
	jobs.EndBudget:      "budget reached",
	jobs.EndFatal:       "refused by the API",
	jobs.EndUnreachable: "endpoint unreachable",
	jobs.EndInterrupted: "interrupted",
	jobs.EndCancelled:   "cancelled",
	jobs.EndDetached:    "detached: batches left with the provider",
	jobs.EndError:       "error",
	jobs.EndKilled:      "killed or crashed",
}

// writeRunRows writes whether a run is live and how the last one ended:
//
//	run        live (pid 4242 on host-a)
//	last end   finished at 2025-01-02T05:06:07Z: 22 requests failed
func writeRunRows(tw *tabwriter.Writer, s jobs.Stats) {
	live := "not live"
	if s.Run != nil {
		live = "live"
		if s.Job.Lock.Token != "" {
			live += " (" + ownerText(s.Job.Lock) + ")"
		}
	}
	row(tw, "run", live)
	row(tw, "last end", lastEndText(s))
}

func lastEndText(s jobs.Stats) string {
	lr := lastRunOf(s)
	switch {
	case lr.End == "" && s.Run != nil:
		return "none before this run"
	case lr.End == "" && s.Attempts == 0 && s.Cached == 0:
		return "never run"
	case lr.End == "":
		return "not recorded (the job ran before llmbatch kept how runs end)"
	}
	name, ok := endNames[lr.End]
	if !ok {
		name = string(lr.End)
	}
	text := name + " at " + formatTime(lr.At)
	if lr.End == jobs.EndKilled {
		text = name + " (last heartbeat " + formatTime(lr.At) + ")"
	}
	if lr.Message != "" {
		text += ": " + lr.Message
	}
	return text
}

// runningText is the running count; while a run is live, split into the
// calls in flight and the requests it claimed but has not sent yet. Without
// a live run, running requests are orphans of a run that is gone.
func runningText(s jobs.Stats) string {
	n := s.Counts[jobs.StatusRunning]
	if b := s.InBatches; b > 0 {
		rest := s
		rest.InBatches, rest.Counts = 0, map[jobs.Status]int{jobs.StatusRunning: n - b}
		if n == b {
			return fmt.Sprintf("%d: in provider batches", n)
		}
		return fmt.Sprintf("%d: %d in provider batches; the others %s", n, b, runningText(rest))
	}
	switch {
	case s.Run != nil:
		inFlight := min(s.Run.InFlight, n)
		return fmt.Sprintf("%d: %d in flight, %d claimed", n, inFlight, n-inFlight)
	case n > 0:
		return fmt.Sprintf("%d (claimed by a run that is gone; back to pending when the next run starts)", n)
	}
	return "0"
}

// StatusJSONLastRun is the "last_run" member of StatusJSON: how the job's
// last run ended. end is one of finished, budget, fatal, unreachable,
// interrupted, cancelled, error, or killed (a run holds the job's lock but
// is not live: it was killed or crashed; at is then its lock's last
// heartbeat), and "" when no run has ended; at is RFC 3339 in UTC ("" when
// end is ""); message is what the run ended with. While a run is live, it
// is the end of the run before it.
type StatusJSONLastRun struct {
	End     string `json:"end"`
	At      string `json:"at"`
	Message string `json:"message"`
}

func newStatusJSONLastRun(s jobs.Stats) StatusJSONLastRun {
	lr := lastRunOf(s)
	return StatusJSONLastRun{End: string(lr.End), At: utcTime(lr.At), Message: lr.Message}
}
