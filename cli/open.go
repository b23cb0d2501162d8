package cli

// Opening the database named by --db, and finding the job a command
// names: by name, or by the file it was imported from (importing it when
// it is new).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmbatch/llmbatch/input"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	"github.com/llmbatch/llmbatch/store"
	urfave "github.com/urfave/cli/v2"
)

// readOnlyCommands only read the database: when it cannot be opened for
// writing (a read-only disk or file, a full disk) they read it read-only.
var readOnlyCommands = map[string]bool{"status": true, "jobs": true, "export": true, "report": true}

// withStore opens the database named by --db / $LLMBATCH_DB for a command
// that reads or changes jobs, refusing to create one where there is none.
// A command that only reads falls back to a read-only open when the
// read-write one fails; if that fails too, the read-write error is the one
// that explains, unless the database could be read only after a write
// (jobs.ErrNeedsWrite).
func withStore(c *urfave.Context, env func(string) string, fn func(ctx context.Context, st jobs.Store) error) error {
	path := dbPath(c, env)
	if _, err := os.Stat(path); err != nil && !store.IsPostgres(path) {
		return fmt.Errorf("no database at %s (run or import a file first, or pass --db)", path)
	}
	st, err := store.Open(c.Context, path)
	if err != nil && readOnlyCommands[c.Command.Name] {
		if ro, roErr := store.OpenReadOnly(c.Context, path); roErr == nil {
			st, err = ro, nil
		} else if errors.Is(roErr, jobs.ErrNeedsWrite) {
			err = roErr // says why it cannot be read, and what to do
		}
	}
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(c.Context, st)
}

// withPrices is withStore for a command that prices what it shows: the
// prices of its flags, loaded first, are passed to fn.
func withPrices(c *urfave.Context, env func(string) string, o priceOptions, fn func(context.Context, jobs.Store, jobs.Prices) error) error {
	prices, err := o.load()
	if err != nil {
		return err
	}
	return withStore(c, env, func(ctx context.Context, st jobs.Store) error { return fn(ctx, st, prices) })
}

// findJob returns the job named by the first argument; with no argument
// and exactly one job in the database, that one.
func findJob(ctx context.Context, st jobs.Store, name string) (jobs.Job, error) {
	if name != "" {
		job, err := st.Job(ctx, name)
		if errors.Is(err, jobs.ErrNotFound) {
			return job, fmt.Errorf("no job named %q (see `llmbatch jobs`)", name)
		}
		return job, err
	}
	list, err := st.Jobs(ctx)
	if err != nil {
		return jobs.Job{}, err
	}
	if len(list) != 1 {
		return jobs.Job{}, fmt.Errorf("%s in the database; name one (see `llmbatch jobs`)", output.Plural(len(list), "job"))
	}
	return list[0].Job, nil
}

func dbPath(c *urfave.Context, env func(string) string) string {
	if c.IsSet("db") {
		return c.String("db")
	}
	if v := env("LLMBATCH_DB"); v != "" {
		return v
	}
	return c.String("db")
}

// withInputJob opens the database and the job an input names — reading
// standard input first when it is the input, importing the file when it
// is new — and calls fn with them (and the options, which then read the
// spooled input). With orName an input that is no file is a job's name.
// No database is created for an input that is neither.
func withInputJob(ctx context.Context, o importOptions, orName bool, fn func(jobs.Store, importOptions, jobs.Job, bool) error) error {
	o, cleanup, err := spoolStdin(o)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := inputOrDatabase(o, orName); err != nil {
		return err
	}
	st, err := store.Open(ctx, o.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	job, imported, err := openJob(ctx, st, o, orName)
	if err != nil {
		return err
	}
	return fn(st, o, job, imported)
}

// inputOrDatabase refuses, before a database is created, an input that is
// no file when there is no database to hold a job of that name (or, unless
// orName, when it is no file at all).
func inputOrDatabase(o importOptions, orName bool) error {
	_, err := os.Stat(o.Input)
	if err == nil {
		return nil
	}
	if !orName {
		return fmt.Errorf("%s: %w", o.source(), errors.Unwrap(err))
	}
	if _, err := os.Stat(o.DB); err == nil || store.IsPostgres(o.DB) {
		return nil // a server's database holds jobs whatever the local files
	}
	return fmt.Errorf("%s: no such file, and no database at %s to hold a job of that name", o.source(), o.DB)
}

// openJob returns the job opts names: the stored job when the file's
// content is unchanged (nothing is imported twice), a new job imported in
// one transaction otherwise. With orName, an input that is not a file is
// looked up as a job name. A stored job is refused when a flag given now
// would change what it sends.
func openJob(ctx context.Context, st jobs.Store, opts importOptions, orName bool) (jobs.Job, bool, error) {
	info, statErr := os.Stat(opts.Input)
	if statErr != nil && orName && opts.Job == "" {
		job, err := st.Job(ctx, opts.Input)
		if err == nil {
			return job, false, sameShape(job, opts)
		}
		if !errors.Is(err, jobs.ErrNotFound) {
			return job, false, err
		}
		return job, false, fmt.Errorf("%s: no such file, and no job of that name", opts.Input)
	}
	if statErr == nil && info.IsDir() {
		return jobs.Job{}, false, fmt.Errorf("%s: is a directory, not a JSONL file", opts.Input)
	}
	name := opts.Job
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(opts.Input), filepath.Ext(opts.Input))
	}
	job, err := st.Job(ctx, name)
	if err == nil {
		if err := sameShape(job, opts); err != nil {
			return job, false, err
		}
		return job, false, sameContent(job, opts)
	} else if !errors.Is(err, jobs.ErrNotFound) {
		return job, false, err
	}
	job, err = importFile(ctx, st, name, opts)
	return job, err == nil, err
}

// sameShape refuses a resume whose flags would change what the job sends,
// naming each difference. A job stored before its flags were (no Shape)
// can only be checked for its default model.
func sameShape(job jobs.Job, opts importOptions) error {
	set, given := job.Settings, opts.Shape
	if set.Shape == nil {
		set.Shape = map[string][]string{}
		if job.DefaultModel != "" {
			set.Shape["model"] = []string{job.DefaultModel}
		}
		given = map[string][]string{}
		if m, ok := opts.Shape["model"]; ok {
			given["model"] = m
		}
	}
	if _, ok := set.Shape["stream"]; !ok {
		// A job imported by import was never sent: its first run says
		// whether it streams, and stores it (resolveSending).
		given = maps.Clone(given)
		delete(given, "stream")
	}
	diff := set.ShapeDiff(given)
	if len(diff) == 0 {
		return nil
	}
	return fmt.Errorf("job %q was created with other settings, and a resume sends what the job was created with:\n  %s\n"+
		"leave these flags out to continue the job as it is, or import the file under a new --job NAME to send it with them",
		job.Name, strings.Join(diff, "\n  "))
}

// sameContent refuses to continue a job from a file whose content (or
// default model) changed since it was imported. A run without --model
// continues with the job's own default model.
func sameContent(job jobs.Job, opts importOptions) error {
	model := opts.Model
	if model == "" {
		model = job.DefaultModel
	}
	fp, err := fingerprintOf(opts, model)
	if err != nil {
		return err
	}
	if fp == job.Fingerprint {
		return nil
	}
	return fmt.Errorf("job %q was imported from different content (file %s, default model %q); "+
		"to keep both, pass --job NEWNAME; to continue the stored job unchanged, run `%s` with no file",
		job.Name, job.Source, job.DefaultModel, command(opts, "run", job.Name))
}

func importFile(ctx context.Context, st jobs.Store, name string, opts importOptions) (jobs.Job, error) {
	r, err := openSource(opts)
	if err != nil {
		return jobs.Job{}, err
	}
	defer r.Close()
	set := opts.Settings
	set.Shape = maps.Clone(set.Shape) // what the command stores of its own, under the flags given
	if set.Shape == nil {
		set.Shape = map[string][]string{}
	}
	maps.Copy(set.Shape, opts.Shape)
	job, err := st.Import(ctx, jobs.Job{Name: name, Source: opts.source(), DefaultModel: opts.Model, Settings: set}, r)
	var fe *input.FileError
	var ve *jobs.ValidationError
	if errors.As(err, &fe) {
		// Not a file of requests at all: one line says why.
		return job, fmt.Errorf("%w; nothing was imported or sent", fe)
	} else if errors.As(err, &ve) {
		hint := ""
		if !opts.SkipInvalid {
			hint = "\n(--skip-invalid imports the valid lines and keeps these as failed requests)"
		}
		return job, fmt.Errorf("%s is invalid; nothing was imported or sent:\n%w%s", opts.source(), err, hint)
	}
	if err != nil || !opts.SkipInvalid {
		return job, err
	}
	return job, reportSkipped(ctx, st, job, opts.Warn)
}

// shownSkipped is how many of the lines --skip-invalid kept an import lists.
const shownSkipped = 10

// reportSkipped lists the first lines an import with --skip-invalid kept
// as failed requests, and how many there are.
func reportSkipped(ctx context.Context, st jobs.Store, job jobs.Job, w io.Writer) error {
	msgs, total, err := st.InvalidLines(ctx, job.ID, shownSkipped)
	if err != nil || total == 0 || w == nil {
		return err
	}
	fmt.Fprintf(w, "llmbatch: job %s: %d of %s are invalid and were kept as failed requests (invalid_input; never sent, not retried):\n",
		job.Name, total, output.Plural(job.Total, "line"))
	for _, m := range msgs {
		fmt.Fprintf(w, "  %s\n", m)
	}
	if more := total - len(msgs); more > 0 {
		fmt.Fprintf(w, "  … and %d more; `llmbatch export %s --errors FILE` lists them all\n", more, job.Name)
	}
	return nil
}

// defaultDB is the database --db names when neither it nor $LLMBATCH_DB
// is given.
const defaultDB = "llmbatch.db"
