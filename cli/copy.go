package cli

import (
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
	"github.com/llmbatch/llmbatch/store"
	urfave "github.com/urfave/cli/v2"
)

func copyCommand(env func(string) string, stdout io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:      "copy",
		Usage:     "copy a job, with its requests, attempts, results and provider batches, to another database or from one",
		ArgsUsage: "JOB",
		Description: `Example:
   llmbatch copy prompts --to postgres://me@db.example/llmbatch      # hand a job to the team's database
   llmbatch --db offline.db copy prompts --from postgres://me@db.example/llmbatch
   llmbatch copy prompts --to other.db --job prompts-2               # under another name

The copy is a new job in the target, with every row of the job: its requests (bodies,
metadata, statuses, attempt counts, waits, errors, lines kept invalid), attempts, results
(byte for byte), provider batches and settings. The source is left as it was. status,
export, report and run work on the copy as on the original: run continues it where it
stood. A job that a live run works is refused, and so is a name the target holds (--job).
A copy is one transaction in the target: an interrupted copy stores nothing.`,
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "to", Usage: "copy the job of --db into the database `DSN` (a path, or postgres://…)"},
			&urfave.StringFlag{Name: "from", Usage: "copy the job of the database `DSN` (a path, or postgres://…) into --db"},
			&urfave.StringFlag{Name: "job", Usage: "the copy's `NAME` in the target (default: the job's own)"},
		},
		Action: func(c *urfave.Context) error {
			opts := copyOptions{Job: c.Args().First(), DB: dbPath(c, env), To: c.String("to"), From: c.String("from"),
				Name: c.String("job"), nameSet: c.IsSet("job")}
			if err := opts.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runCopy(ctx, opts, stdout)
		},
	}
}

// copyOptions are the arguments and flags of the copy command.
type copyOptions struct {
	Job string
	// DB is --db; To or From (one of them) the other database.
	DB, To, From string
	// Name is the copy's name ("" for the job's own); nameSet says --job
	// was given.
	Name    string
	nameSet bool
}

// Validate checks that the command names a job and one other database.
func (o copyOptions) Validate() error {
	switch {
	case o.Job == "":
		return usagef("copy needs the JOB to copy, and --to DSN or --from DSN")
	case o.To != "" && o.From != "":
		return usagef("give --to or --from, not both: the other database is --db")
	case o.To == "" && o.From == "":
		return usagef("copy %s where? give --to DSN (copy out of --db) or --from DSN (copy into --db)", o.Job)
	case o.nameSet && o.Name == "":
		return usagef("--job needs a name")
	}
	return nil
}

// source and target are the databases the job is copied from and to.
func (o copyOptions) source() string {
	if o.From != "" {
		return o.From
	}
	return o.DB
}

func (o copyOptions) target() string {
	if o.To != "" {
		return o.To
	}
	return o.DB
}

// name is the copy's name in the target.
func (o copyOptions) name() string {
	if o.Name != "" {
		return o.Name
	}
	return o.Job
}

// runCopy opens both databases and copies the job.
func runCopy(ctx context.Context, o copyOptions, stdout io.Writer) error {
	src, err := openCopySource(ctx, o.source())
	if err != nil {
		return err
	}
	defer src.Close()
	job, err := src.Job(ctx, o.Job)
	if errors.Is(err, jobs.ErrNotFound) {
		return fmt.Errorf("no job named %q in %s (see `%s`)", o.Job, store.Display(o.source()), command(importOptions{DB: o.source()}, "jobs"))
	} else if err != nil {
		return err
	}
	dst, err := store.Open(ctx, o.target())
	if err != nil {
		return err
	}
	defer dst.Close()
	start := time.Now()
	copied, n, err := jobs.Copy(ctx, src, dst, job, jobs.CopyOptions{Name: o.Name, StaleAfter: lockStale, Dead: ownerDead})
	if err != nil {
		return copyError(ctx, o, err)
	}
	printCopied(stdout, o, copied, n, time.Since(start))
	return nil
}

// openCopySource opens the database a job is copied from, which must
// exist; one that cannot be written is read read-only, since a copy only
// reads it.
func openCopySource(ctx context.Context, dsn string) (jobs.Store, error) {
	if _, err := os.Stat(dsn); err != nil && !store.IsPostgres(dsn) {
		return nil, fmt.Errorf("no database at %s to copy from", dsn)
	}
	st, err := store.Open(ctx, dsn)
	if err == nil {
		return st, nil
	}
	if ro, roErr := store.OpenReadOnly(ctx, dsn); roErr == nil {
		return ro, nil
	} else if errors.Is(roErr, jobs.ErrNeedsWrite) {
		return nil, roErr
	}
	return nil, err
}

// copyError says why a copy was refused or failed, and that the target
// holds nothing of it.
func copyError(ctx context.Context, o copyOptions, err error) error {
	target := store.Display(o.target())
	var le *jobs.LockedError
	switch {
	case errors.Is(err, jobs.ErrJobExists):
		return fmt.Errorf("%s has a job named %q already; copy under another name with --job NEW", target, o.name())
	case errors.As(err, &le):
		return fmt.Errorf("job %q is being worked by a live run (pid %d on %s, last heartbeat %s); "+
			"copy it once that run has ended, or stop it first (a killed run counts as ended after %s)",
			o.Job, le.Holder.PID, le.Holder.Host, le.Heartbeat.Format(time.RFC3339), lockStale)
	case ctx.Err() != nil:
		return fmt.Errorf("copy of job %q interrupted; nothing of it was stored in %s: %w", o.Job, target, jobs.ErrInterrupted)
	}
	return fmt.Errorf("copy of job %q to %s: %w; nothing of it was stored there", o.Job, target, err)
}

// printCopied says what was copied where, and how to use the copy.
func printCopied(w io.Writer, o copyOptions, job jobs.Job, n jobs.CopyCounts, took time.Duration) {
	reqs := output.Plural(n.Requests, "request")
	if n.Invalid > 0 {
		reqs += fmt.Sprintf(" (%d kept invalid)", n.Invalid)
	}
	name := job.Name
	if name != o.Job {
		name = o.Job + " as " + job.Name
	}
	fmt.Fprintf(w, "copied job %s from %s to %s in %s: %s, %s, %s, %s, and its settings; the source is unchanged\n",
		name, store.Display(o.source()), store.Display(o.target()), took.Round(time.Millisecond), reqs,
		output.Plural(n.Attempts, "attempt"), output.Plural(n.Results, "result"), providerBatches(n.Batches))
	at := importOptions{DB: o.target()}
	fmt.Fprintf(w, "see it:      %s\n", command(at, "status", job.Name))
	if job.State == jobs.JobActive {
		fmt.Fprintf(w, "continue it: %s\n", command(at, "run", job.Name))
	}
}

// providerBatches is n provider batches, in words.
func providerBatches(n int) string {
	if n == 1 {
		return "1 provider batch"
	}
	return fmt.Sprintf("%d provider batches", n)
}
