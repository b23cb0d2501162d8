package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	"github.com/llmbatch/llmbatch/store"
	"github.com/urfave/cli/v2"
)

// readOnlyCommands only read the database: when it cannot be opened for
// writing (a read-only disk or file, a full disk) they read it read-only.
var readOnlyCommands = map[string]bool{"status": true, "jobs": true, "export": true, "report": true}

// withStore opens the database named by --db / $LLMBATCH_DB for a command
// that reads or changes jobs, refusing to create one where there is none.
// A command that only reads falls back to a read-only open when the
// read-write one fails; if that fails too, the read-write error is the one
// that explains.
func withStore(c *cli.Context, env func(string) string, fn func(ctx context.Context, st *store.Store) error) error {
	path := dbPath(c, env)
	if _, err := os.Stat(path); err != nil {
		return withCode(exitError, fmt.Errorf("no database at %s (run or import a file first, or pass --db)", path))
	}
	st, err := store.Open(c.Context, path)
	if err != nil && readOnlyCommands[c.Command.Name] {
		if ro, roErr := store.OpenReadOnly(c.Context, path); roErr == nil {
			st, err = ro, nil
		}
	}
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(c.Context, st)
}

// findJob returns the job named by the first argument; with no argument
// and exactly one job in the database, that one.
func findJob(ctx context.Context, st *store.Store, name string) (jobs.Job, error) {
	if name != "" {
		job, err := st.Job(ctx, name)
		if errors.Is(err, jobs.ErrNotFound) {
			return job, withCode(exitError, fmt.Errorf("no job named %q (see `llmbatch jobs`)", name))
		}
		return job, err
	}
	list, err := st.Jobs(ctx)
	if err != nil {
		return jobs.Job{}, err
	}
	if len(list) != 1 {
		return jobs.Job{}, withCode(exitError, fmt.Errorf("%d jobs in the database; name one (see `llmbatch jobs`)", len(list)))
	}
	return list[0].Job, nil
}

func statusCommand(env func(string) string, stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show a job's counts by state, tokens, attempts, latency and error classes",
		ArgsUsage: "[JOB]",
		Description: `Example:
   llmbatch status prompts
   llmbatch status --json prompts | jq .counts`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON (a stable schema) instead of a table"}},
		Action: func(c *cli.Context) error {
			return withStore(c, env, func(ctx context.Context, st *store.Store) error {
				job, err := findJob(ctx, st, c.Args().First())
				if err != nil {
					return err
				}
				stats, err := st.Stats(ctx, job.ID)
				if err != nil {
					return err
				}
				if stats.Run, err = liveRun(ctx, st, job.ID); err != nil {
					return err
				}
				if c.Bool("json") {
					return output.WriteStatusJSON(stdout, stats)
				}
				return output.WriteStatus(stdout, stats)
			})
		},
	}
}

// liveRun returns how the run working the job is pacing itself, or nil
// when no run has saved its state recently (none runs, or it died).
func liveRun(ctx context.Context, st *store.Store, jobID int64) (*jobs.RunState, error) {
	rs, err := st.RunState(ctx, jobID)
	if errors.Is(err, jobs.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if !rs.Live(time.Now()) {
		return nil, nil
	}
	return &rs, nil
}

func jobsCommand(env func(string) string, stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:        "jobs",
		Usage:       "list the jobs in the database",
		Description: "Example:\n   llmbatch --db overnight.db jobs",
		Action: func(c *cli.Context) error {
			return withStore(c, env, func(ctx context.Context, st *store.Store) error {
				list, err := st.Jobs(ctx)
				if err != nil {
					return err
				}
				return output.WriteJobs(stdout, list)
			})
		},
	}
}

func retryCommand(env func(string) string, stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:        "retry",
		Usage:       "put a job's failed requests back to pending, with fresh attempts",
		ArgsUsage:   "JOB",
		Description: "Example:\n   llmbatch retry prompts && llmbatch run prompts",
		Action: func(c *cli.Context) error {
			return changeJob(c, env, stdout, "back to pending", (*store.Store).Retry)
		},
	}
}

func cancelCommand(env func(string) string, stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:        "cancel",
		Usage:       "stop a job for good; its results stay exportable",
		ArgsUsage:   "JOB",
		Description: "Example:\n   llmbatch cancel prompts",
		Action: func(c *cli.Context) error {
			return changeJob(c, env, stdout, "cancelled", (*store.Store).Cancel)
		},
	}
}

func changeJob(c *cli.Context, env func(string) string, stdout io.Writer, what string, change func(*store.Store, context.Context, int64) (int, error)) error {
	if c.Args().Len() != 1 {
		return withCode(exitError, errors.New("name one JOB"))
	}
	return withStore(c, env, func(ctx context.Context, st *store.Store) error {
		job, err := findJob(ctx, st, c.Args().First())
		if err != nil {
			return err
		}
		n, err := change(st, ctx, job.ID)
		if errors.Is(err, jobs.ErrCancelled) {
			return withCode(exitError, fmt.Errorf("job %q is cancelled", job.Name))
		} else if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "job %s: %d requests %s\n", job.Name, n, what)
		return nil
	})
}
