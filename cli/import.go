package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/llmbatch/llmbatch/input"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	"github.com/llmbatch/llmbatch/store"
	urfave "github.com/urfave/cli/v2"
)

// importOptions are the flags that decide which job a file becomes.
type importOptions struct {
	DB    string
	Input string // a file path, or (for run) the name of an existing job
	Job   string
	Model string
	// SkipInvalid (--skip-invalid) imports the valid lines of a file with
	// invalid ones, keeping each invalid line as a failed request.
	SkipInvalid bool
	// Warn gets the list of lines --skip-invalid kept as failed requests
	// (the app's stderr); nil prints nothing.
	Warn io.Writer
	// Dataset holds the dataset, samples and cache flags (cmd_dataset.go).
	Dataset datasetOptions
	// Shape holds the flags that shape what is sent, as given on this
	// command line (see jobs.Settings.Shape); a new job stores them, a
	// resume must not contradict them.
	Shape map[string][]string
	// Settings is what a job this command creates stores (its Shape is
	// filled from Shape).
	Settings jobs.Settings
	// SourceName names the input in messages and in the job, when it is
	// not Input itself: "-" for standard input spooled to a file.
	SourceName string
	// Stdin is the standard input an Input of "-" reads.
	Stdin io.Reader
}

func (o importOptions) Validate() error {
	if o.Input == "" {
		return errors.New("give an input FILE (or, for run, a JOB name)")
	}
	return o.Dataset.Validate()
}

// dryRunFlag makes run and import validate the file and print what it
// would send and cost, without opening the database (dryrun.go).
var dryRunFlag = &urfave.BoolFlag{Name: "dry-run", Usage: "validate FILE and print the requests per endpoint and model, estimated tokens, worst-case cost (with prices) and duration (with --rpm/--tpm); sends nothing and writes nothing"}

var importFlags = append([]urfave.Flag{
	&urfave.StringFlag{Name: "job", Usage: "job `NAME` (default: the file's base name without extension)"},
	&urfave.StringFlag{Name: "model", Usage: "default `MODEL` for lines that name none"},
	&urfave.BoolFlag{Name: "skip-invalid", Usage: "import the valid lines of a file that has invalid ones; each invalid line (and each later use of a custom_id) is kept as a failed request with error code invalid_input, never sent and never retried, so the run ends with exit 3 and the export lists it (--dry-run still lists every invalid line)"},
}, datasetFlags...)

func importOptionsFrom(c *urfave.Context, env func(string) string) importOptions {
	// A dry run validates: it lists the invalid lines whatever
	// --skip-invalid says, as the import would skip them.
	return importOptions{DB: dbPath(c, env), Input: c.Args().First(), Job: c.String("job"), Model: c.String("model"),
		SkipInvalid: c.Bool("skip-invalid") && !c.Bool("dry-run"), Warn: c.App.ErrWriter,
		Dataset: datasetOptionsFrom(c), Shape: shapeFlags(c)}
}

// shapeFlags returns the flags of jobs.ShapeFlags given on the command
// line, with their values as a job stores them.
func shapeFlags(c *urfave.Context) map[string][]string {
	given := map[string][]string{}
	for _, name := range jobs.ShapeFlags {
		if !c.IsSet(name) {
			continue
		}
		switch name {
		case "param":
			if l, ok := c.Generic(name).(*stringList); ok {
				given[name] = append([]string{}, *l...)
			}
		case "stream":
			given[name] = []string{strconv.FormatBool(c.Bool(name))}
		case "samples":
			given[name] = []string{strconv.Itoa(c.Int(name))}
		case "template":
			// The same template named from another directory is the same.
			path, err := filepath.Abs(c.String(name))
			if err != nil {
				path = c.String(name)
			}
			given[name] = []string{path}
		default:
			given[name] = []string{c.String(name)}
		}
	}
	return given
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

func importCommand(env func(string) string, stdin io.Reader, stdout, stderr io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:      "import",
		Usage:     "validate FILE and store it as a job, without sending anything",
		ArgsUsage: "FILE",
		Description: `Example:
   llmbatch import --model deepseek/deepseek-v3 prompts.jsonl
   llmbatch import --dry-run prompts.jsonl    # validate and estimate only; writes nothing`,
		Flags: append(append(append([]urfave.Flag{}, importFlags...), priceFlags()...), dryRunFlag),
		Action: func(c *urfave.Context) error {
			if c.Bool("dry-run") {
				return runDryRun(importOptionsFrom(c, env), priceOptionsFrom(c), output.PlanLimits{}, stdout)
			}
			opts := importOptionsFrom(c, env)
			opts.Stdin = stdin
			return runImport(c.Context, opts, stdout)
		},
	}
}

// runImport stores FILE as a job (or finds it stored already) and prints
// the job's name and request count.
func runImport(ctx context.Context, opts importOptions, stdout io.Writer) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	opts, cleanup, err := spoolStdin(opts)
	if err != nil {
		return err
	}
	defer cleanup()
	if _, err := os.Stat(opts.Input); err != nil {
		return fmt.Errorf("%s: %w", opts.source(), errors.Unwrap(err))
	}
	st, err := store.Open(ctx, opts.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	job, imported, err := openJob(ctx, st, opts, false)
	if err != nil {
		return err
	}
	verb := "already imported"
	if imported {
		verb = "imported"
	}
	fmt.Fprintf(stdout, "job %s: %s %s from %s\n", job.Name, output.Plural(job.Total, "request"), verb, job.Source)
	return nil
}

// source names the input in messages: the file, or "-" for standard input.
func (o importOptions) source() string { return cmp.Or(o.SourceName, o.Input) }

// spoolStdin copies standard input (an Input of "-") to a private
// temporary file and returns opts reading it, with a function that removes
// it; other inputs are returned as they are. Reading a job from standard
// input needs --job: a resume must find it by name.
func spoolStdin(opts importOptions) (importOptions, func(), error) {
	if opts.Input != "-" {
		return opts, func() {}, nil
	}
	if opts.Job == "" {
		return opts, nil, errors.New("reading requests from standard input (-) needs --job NAME")
	}
	f, err := os.CreateTemp("", "llmbatch-stdin-*.jsonl") // mode 0600
	if err != nil {
		return opts, nil, fmt.Errorf("standard input: %w", err)
	}
	cleanup := func() { os.Remove(f.Name()) }
	if opts.Stdin != nil {
		_, err = io.Copy(f, opts.Stdin)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return opts, nil, fmt.Errorf("standard input: %w", err)
	}
	opts.Input, opts.SourceName = f.Name(), "-"
	return opts, cleanup, nil
}

// openJob returns the job opts names: the stored job when the file's
// content is unchanged (nothing is imported twice), a new job imported in
// one transaction otherwise. With orName, an input that is not a file is
// looked up as a job name. A stored job is refused when a flag given now
// would change what it sends.
func openJob(ctx context.Context, st *store.Store, opts importOptions, orName bool) (jobs.Job, bool, error) {
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
		"to keep both, pass --job NEWNAME; to continue the stored job unchanged, run `llmbatch run %s` with no file",
		job.Name, job.Source, job.DefaultModel, job.Name)
}

func importFile(ctx context.Context, st *store.Store, name string, opts importOptions) (jobs.Job, error) {
	r, err := openSource(opts)
	if err != nil {
		return jobs.Job{}, err
	}
	defer r.Close()
	set := opts.Settings
	set.Shape = opts.Shape
	job, err := st.Import(ctx, jobs.Job{Name: name, Source: opts.source(), DefaultModel: opts.Model, Settings: set}, r)
	if opts.SourceName != "" {
		renameInput(err, opts.Input, opts.SourceName)
	}
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

// renameInput names the input as the user gave it in the line errors of
// err, where they name the file it was spooled to.
func renameInput(err error, path, name string) {
	var ve *jobs.ValidationError
	if !errors.As(err, &ve) {
		return
	}
	for i := range ve.Errors {
		if ve.Errors[i].File == path {
			ve.Errors[i].File = name
		}
	}
}

// shownSkipped is how many of the lines --skip-invalid kept an import lists.
const shownSkipped = 10

// reportSkipped lists the first lines an import with --skip-invalid kept
// as failed requests, and how many there are.
func reportSkipped(ctx context.Context, st *store.Store, job jobs.Job, w io.Writer) error {
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
