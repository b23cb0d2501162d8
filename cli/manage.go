package cli

// The commands that list and change jobs: jobs, retry, cancel.

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	"github.com/llmbatch/llmbatch/store"
	urfave "github.com/urfave/cli/v2"
)

func jobsCommand(env func(string) string, stdout io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:        "jobs",
		Usage:       "list the jobs in the database",
		Description: "Example:\n   llmbatch --db overnight.db jobs",
		Action: func(c *urfave.Context) error {
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

func retryCommand(env func(string) string, stdout io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:        "retry",
		Usage:       "put a job's failed requests back to pending, with fresh attempts",
		ArgsUsage:   "JOB",
		Description: "Example:\n   llmbatch retry prompts && llmbatch run prompts",
		Action: func(c *urfave.Context) error {
			return changeJob(c, env, stdout, "back to pending", (*store.Store).Retry)
		},
	}
}

func cancelCommand(env func(string) string, stdout io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:        "cancel",
		Usage:       "stop a job for good; its results stay exportable",
		ArgsUsage:   "JOB",
		Description: "Example:\n   llmbatch cancel prompts",
		Action: func(c *urfave.Context) error {
			return changeJob(c, env, stdout, "cancelled", (*store.Store).Cancel)
		},
	}
}

func changeJob(c *urfave.Context, env func(string) string, stdout io.Writer, what string, change func(*store.Store, context.Context, int64) (int, error)) error {
	if c.Args().Len() != 1 {
		return errors.New("name one JOB")
	}
	return withStore(c, env, func(ctx context.Context, st *store.Store) error {
		job, err := findJob(ctx, st, c.Args().First())
		if err != nil {
			return err
		}
		n, err := change(st, ctx, job.ID)
		if errors.Is(err, jobs.ErrCancelled) {
			return fmt.Errorf("job %q is cancelled", job.Name)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "job %s: %s %s\n", job.Name, output.Plural(n, "request"), what)
		if what == "cancelled" && job.Lock.Token != "" {
			fmt.Fprintf(stdout, "job %s: the run working it (pid %d on %s) stops claiming within %s; the requests it has in flight finish, and what they leave pending is cancelled\n",
				job.Name, job.Lock.PID, job.Lock.Host, lockBeat)
		}
		return nil
	})
}
