package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	urfave "github.com/urfave/cli/v2"
)

func statusCommand(env func(string) string, stdout io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:      "status",
		Usage:     "show a job's counts by state, tokens, attempts, latency and error classes",
		ArgsUsage: "[JOB]",
		Description: `Example:
   llmbatch status prompts
   llmbatch status --json prompts | jq .counts`,
		Flags: append([]urfave.Flag{
			&urfave.BoolFlag{Name: "json", Usage: "print JSON (a stable schema, see docs/status.md) instead of a table"},
			&urfave.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "redraw every --interval until Ctrl-C or the job is finished"},
			&urfave.DurationFlag{Name: "interval", Value: 2 * time.Second, Usage: "how often --watch redraws"},
		}, priceFlags()...),
		Action: func(c *urfave.Context) error {
			opts := statusOptions{Job: c.Args().First(), JSON: c.Bool("json"), Watch: c.Bool("watch"),
				Interval: c.Duration("interval"), priceOptions: priceOptionsFrom(c)}
			if err := opts.Validate(); err != nil {
				return err
			}
			return withPrices(c, env, opts.priceOptions, func(ctx context.Context, st jobs.Store, prices jobs.Prices) error {
				if opts.Watch {
					var stop context.CancelFunc
					ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
					defer stop()
				}
				return runStatus(ctx, st, opts, prices, stdout)
			})
		},
	}
}

// statusOptions are the flags of the status command.
type statusOptions struct {
	Job   string
	JSON  bool
	Watch bool
	// Interval is how often Watch reads and writes the status again.
	Interval time.Duration
	priceOptions
}

// Validate checks that a watch has an interval to wait.
func (o statusOptions) Validate() error {
	if o.Watch && o.Interval <= 0 {
		return fmt.Errorf("--interval %s: want a positive duration such as 2s", o.Interval)
	}
	return nil
}

// clearScreen moves the cursor home and clears a terminal, so that each
// report of --watch is drawn in the same place.
const clearScreen = "\x1b[H\x1b[2J"

// runStatus writes the job's status once; with Watch, again every
// Interval until ctx ends (Ctrl-C) or the job is finished (no request left
// and no live run). On a terminal each report replaces the last; elsewhere
// the reports follow each other, separated by a blank line. Each report is
// read and rendered whole before it is written, so none is half drawn.
func runStatus(ctx context.Context, st jobs.Store, o statusOptions, prices jobs.Prices, stdout io.Writer) error {
	job, err := findJob(ctx, st, o.Job)
	if err != nil {
		if o.Watch && ctx.Err() != nil {
			return nil // Ctrl-C stops --watch, even before its first report
		}
		return err
	}
	prices = jobPrices(job, prices)
	tty := o.Watch && output.IsTerminal(stdout)
	for n := 0; ; n++ {
		var buf bytes.Buffer
		stats, err := readStatus(ctx, st, job.ID)
		var runners []jobs.RunnerInfo
		if err == nil {
			runners, err = liveRunners(ctx, st, job.ID)
		}
		if err == nil {
			err = writeStatus(&buf, stats, runners, prices, o.JSON)
		}
		if ctx.Err() != nil && (n > 0 || o.Watch) {
			return nil // Ctrl-C while reading: the last report, if any, stands
		} else if err != nil {
			return err
		}
		if tty {
			io.WriteString(stdout, clearScreen)
		} else if n > 0 {
			io.WriteString(stdout, "\n")
		}
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			return err
		}
		if !o.Watch || (stats.ETA().State == jobs.ETADone && stats.Run == nil) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Interval):
		}
	}
}

// readStatus reads the job's statistics and its live run's pacing.
func readStatus(ctx context.Context, st jobs.Store, jobID int64) (jobs.Stats, error) {
	stats, err := st.Stats(ctx, jobID)
	if err != nil {
		return stats, err
	}
	if stats.Batches, err = st.Batches(ctx, jobID); err != nil {
		return stats, err
	}
	if stats.Job.Lock.Token == "" || ownerDead(stats.Job.Lock) {
		return stats, nil // no run holds the job, or the one that does is gone
	}
	stats.Run, err = liveRun(ctx, st, jobID, stats.At)
	return stats, err
}

// liveRunners lists the runs working the job on an engine where several
// share it (PostgreSQL); none elsewhere, where status names the one run.
func liveRunners(ctx context.Context, st jobs.Store, jobID int64) ([]jobs.RunnerInfo, error) {
	r, ok := st.(jobs.Runners)
	if !ok {
		return nil, nil
	}
	return r.LiveRunners(ctx, jobID)
}

func writeStatus(w io.Writer, stats jobs.Stats, runners []jobs.RunnerInfo, prices jobs.Prices, asJSON bool) error {
	if asJSON {
		return output.WriteStatusJSONRunners(w, stats, prices, runners)
	}
	if err := output.WriteStatus(w, stats, prices); err != nil {
		return err
	}
	return output.WriteRunners(w, runners, stats.At)
}

// liveRun returns how the run working the job is pacing itself, or nil
// when no run has saved its state recently (as of now; none runs, or it
// died).
func liveRun(ctx context.Context, st jobs.Store, jobID int64, now time.Time) (*jobs.RunState, error) {
	rs, err := st.RunState(ctx, jobID)
	if errors.Is(err, jobs.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if !rs.Live(now) {
		return nil, nil
	}
	return &rs, nil
}
