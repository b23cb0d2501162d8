package cli

// The input a job is made from: a JSONL file of requests, or a dataset
// with a template (--template, CSV, text), read from a file or from
// standard input.

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/llmbatch/llmbatch/input"
	"github.com/llmbatch/llmbatch/jobs"
	urfave "github.com/urfave/cli/v2"
)

// datasetOptions are the dataset, samples and cache flags of run and import.
type datasetOptions struct {
	Template    string // template file
	InputFormat string // jsonl, csv, text; "" by extension
	System      string
	Params      []string // KEY=VALUE, in flag order
	Endpoint    string   // chat, completions, embeddings; "" is chat
	IDField     string
	Samples     int
	NoCache     bool
}

func datasetOptionsFrom(c *urfave.Context) datasetOptions {
	o := datasetOptions{Template: c.String("template"), InputFormat: c.String("input-format"), System: c.String("system"),
		Endpoint: c.String("endpoint"), IDField: c.String("id-field"), Samples: c.Int("samples"), NoCache: c.Bool("no-cache")}
	if l, ok := c.Generic("param").(*stringList); ok {
		o.Params = *l
	}
	return o
}

// Validate checks what does not need the input file.
func (o datasetOptions) Validate() error {
	if o.Samples < 1 {
		return errors.New("--samples must be at least 1")
	}
	return nil
}

// dataset reads the input's format and, for a dataset, the template and
// the options that shape its requests. isDataset is false for a JSONL file
// of requests, which the plain input.Reader reads.
func (o importOptions) dataset() (opts input.DatasetOptions, isDataset bool, err error) {
	d := o.Dataset
	format := input.FormatOf(o.Input)
	if d.InputFormat != "" {
		if format, err = input.ParseRecordFormat(d.InputFormat); err != nil {
			return opts, false, err
		}
	}
	if d.Template == "" && format == input.FormatJSONL {
		if d.System != "" || len(d.Params) > 0 || d.Endpoint != "" || d.IDField != "" {
			return opts, false, fmt.Errorf("--system, --param, --endpoint and --id-field shape requests made from a dataset: " +
				"use them with --template (or a .txt or .csv file); a JSONL file of requests sets these fields itself")
		}
		return opts, false, nil
	}
	opts = input.DatasetOptions{Format: format, System: d.System, Model: o.Model, IDField: d.IDField}
	switch d.Endpoint {
	case "", "chat":
	case "completions":
		opts.Endpoint = jobs.EndpointCompletions
	case "embeddings":
		opts.Endpoint = jobs.EndpointEmbeddings
	default:
		return opts, true, fmt.Errorf("--endpoint %q: want chat, completions or embeddings", d.Endpoint)
	}
	for _, s := range d.Params {
		p, err := input.ParseParam(s)
		if err != nil {
			return opts, true, err
		}
		opts.Params = append(opts.Params, p)
	}
	if d.Template != "" {
		if opts.Template, err = input.LoadTemplate(d.Template); err != nil {
			return opts, true, err
		}
	}
	return opts, true, opts.Validate(o.source())
}

// source is what an import reads requests from.
type source interface {
	jobs.RequestSource
	io.Closer
}

// openSource opens the input as a JSONL file of requests or as a dataset,
// with --samples applied and each request's cache key set.
func openSource(opts importOptions) (source, error) {
	ds, isDataset, err := opts.dataset()
	if err != nil {
		return nil, err
	}
	var src source
	if isDataset {
		ds.SkipInvalid, ds.Name = opts.SkipInvalid, opts.SourceName
		src, err = input.OpenDataset(opts.Input, ds)
	} else {
		src, err = input.Open(opts.Input, input.Options{DefaultModel: opts.Model, SkipInvalid: opts.SkipInvalid,
			Name: opts.SourceName})
	}
	if err != nil {
		return nil, err
	}
	return input.WithSamples(src, opts.Dataset.Samples), nil
}

// fingerprintOf is the fingerprint openSource's source would give, with
// model as the default model, computed without parsing the file.
func fingerprintOf(opts importOptions, model string) (string, error) {
	ds, isDataset, err := opts.dataset()
	if err != nil {
		return "", err
	}
	var fp string
	if isDataset {
		ds.Model = model
		fp, err = input.DatasetFingerprint(opts.Input, ds)
	} else {
		fp, err = input.Fingerprint(opts.Input, input.Options{DefaultModel: model})
	}
	return input.SamplesFingerprint(fp, opts.Dataset.Samples), err
}

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

// withStdin is o reading stdin when its input is "-".
func withStdin(o importOptions, stdin io.Reader) importOptions {
	o.Stdin = stdin
	return o
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
