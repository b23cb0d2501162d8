package cli

// The commands that list and change jobs: jobs, retry, cancel.

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	urfave "github.com/urfave/cli/v2"
)

func jobsCommand(env func(string) string, stdout io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:        "jobs",
		Usage:       "list the jobs in the database",
		Description: "Example:\n   llmbatch --db overnight.db jobs",
		Action: func(c *urfave.Context) error {
			return withStore(c, env, func(ctx context.Context, st jobs.Store) error {
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
	return changeCommand(env, stdout, jobChange{name: "retry", what: "back to pending", change: (jobs.Store).Retry,
		usage: "put a job's failed requests back to pending, with fresh attempts", example: "llmbatch retry prompts && llmbatch run prompts"})
}

func cancelCommand(env func(string) string, stdout io.Writer) *urfave.Command {
	return changeCommand(env, stdout, jobChange{name: "cancel", what: "cancelled", change: (jobs.Store).Cancel,
		usage: "stop a job for good; its results stay exportable", example: "llmbatch cancel prompts", live: true})
}

// jobChange is a command that changes a job's requests in one go.
type jobChange struct {
	name, usage, example string
	// what the change did to the requests, for its message.
	what   string
	change func(jobs.Store, context.Context, int64) (int, error)
	// live: say what becomes of a run working the job.
	live bool
}

func changeCommand(env func(string) string, stdout io.Writer, ch jobChange) *urfave.Command {
	return &urfave.Command{Name: ch.name, Usage: ch.usage, ArgsUsage: "JOB", Description: "Example:\n   " + ch.example,
		Action: func(c *urfave.Context) error { return changeJob(c, env, stdout, ch) }}
}

func changeJob(c *urfave.Context, env func(string) string, stdout io.Writer, ch jobChange) error {
	if c.Args().Len() != 1 {
		return errors.New("name one JOB")
	}
	return withStore(c, env, func(ctx context.Context, st jobs.Store) error {
		job, err := findJob(ctx, st, c.Args().First())
		if err != nil {
			return err
		}
		n, err := ch.change(st, ctx, job.ID)
		again := errors.Is(err, jobs.ErrCancelled)
		switch {
		case again && ch.live:
			// A cancelled job's batches may still be cancelling.
			if open, err := hasOpenBatches(ctx, st, job.ID); err != nil || !open {
				return errors.Join(err, fmt.Errorf("job %q is cancelled", job.Name))
			}
		case again:
			return fmt.Errorf("job %q is cancelled", job.Name)
		case err != nil:
			return err
		default:
			fmt.Fprintf(stdout, "job %s: %s %s\n", job.Name, output.Plural(n, "request"), ch.what)
		}
		if !ch.live {
			return nil
		}
		if err := cancelBatches(ctx, st, job, env, dbPath(c, env), stdout); err != nil {
			return err
		}
		if job.Lock.Token != "" {
			return cancelLive(ctx, st, job, stdout)
		}
		// What the cancelled provider batches left went back to pending.
		_, err = st.CancelLeftovers(ctx, job.ID)
		return err
	})
}

// cancelLive tells what becomes of the run holding a cancelled job: a live
// one stops claiming and drains; one that is gone (killed) left requests
// running, which are cancelled now.
func cancelLive(ctx context.Context, st jobs.Store, job jobs.Job, stdout io.Writer) error {
	if r, ok := st.(jobs.Runners); ok {
		return cancelRunners(ctx, st, r, job, stdout)
	}
	owner := newOwner()
	if err := st.Lock(ctx, job.ID, owner, lockStale, ownerDead); errors.Is(err, jobs.ErrLocked) {
		fmt.Fprintf(stdout, "job %s: the run working it (pid %d on %s) stops claiming within %s; the requests it has in flight finish, and what they leave pending is cancelled\n",
			job.Name, job.Lock.PID, job.Lock.Host, lockBeat)
		return nil
	} else if err != nil {
		return err
	}
	defer st.Unlock(context.WithoutCancel(ctx), job.ID, owner)
	n, err := st.CancelLeftovers(ctx, job.ID)
	if err == nil && n > 0 {
		fmt.Fprintf(stdout, "job %s: the run that held it (pid %d on %s) is gone; the %s it left running are cancelled too\n",
			job.Name, job.Lock.PID, job.Lock.Host, output.Plural(n, "request"))
	}
	return err
}

// cancelRunners is cancelLive on a job several runs share: each live one
// stops claiming at its next heartbeat and drains; what runs that are gone
// left is cancelled now (CancelLeftovers leaves what live runs hold).
func cancelRunners(ctx context.Context, st jobs.Store, r jobs.Runners, job jobs.Job, stdout io.Writer) error {
	live, err := r.LiveRunners(ctx, job.ID)
	if err != nil {
		return err
	}
	for _, run := range live {
		fmt.Fprintf(stdout, "job %s: the run pid %d on %s stops claiming within %s; the %s it has in flight finish, and what they leave pending is cancelled\n",
			job.Name, run.Owner.PID, run.Owner.Host, lockBeat, output.Plural(run.Running, "request"))
	}
	n, err := st.CancelLeftovers(ctx, job.ID)
	if err == nil && n > 0 {
		fmt.Fprintf(stdout, "job %s: the %s that runs now gone left running are cancelled too\n", job.Name, output.Plural(n, "request"))
	}
	return err
}
