package cli

// The import flags that turn a dataset (JSONL records, CSV rows, lines of
// text) into requests with a template, repeat requests as samples, and
// answer requests from the results of identical earlier ones.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

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
	Endpoint    string   // chat, completions; "" is chat
	IDField     string
	Samples     int
	NoCache     bool
}

var datasetFlags = []urfave.Flag{
	&urfave.StringFlag{Name: "template", Usage: "Go text/template `FILE` that renders each dataset record (a JSONL object, a CSV row, a text line as .text) into the user message, or into the whole messages array / request when it renders JSON"},
	&urfave.StringFlag{Name: "input-format", Usage: "`FORMAT` of FILE: jsonl, csv (with a header row) or text (one prompt per line) (default: by extension: .csv, .txt, else jsonl)"},
	&urfave.StringFlag{Name: "system", Usage: "system message `TEXT` put before each dataset prompt"},
	repeatedFlag{&urfave.StringFlag{Name: "param", Usage: "a body field `KEY=VALUE` of each dataset request, repeatable, in order; VALUE is JSON when it parses (temperature=0.7, stop=[\"x\"]), else a string"}},
	&urfave.StringFlag{Name: "endpoint", Usage: "`ENDPOINT` a rendered text goes to: chat (as the user message; default) or completions (as the prompt)"},
	&urfave.StringFlag{Name: "id-field", Usage: "record field `NAME` whose value is the custom_id (default line-N; row-N for CSV)"},
	&urfave.IntFlag{Name: "samples", Value: 1, Usage: "`K` independent completions of every request, with custom_ids ID#0 … ID#K-1"},
	&urfave.BoolFlag{Name: "no-cache", Usage: "run: send every request, even one an identical earlier request (of any job in this database) was answered for"},
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
	default:
		return opts, true, fmt.Errorf("--endpoint %q: want chat or completions", d.Endpoint)
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
	return opts, true, opts.Validate(o.Input)
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
		ds.SkipInvalid = opts.SkipInvalid
		src, err = input.OpenDataset(opts.Input, ds)
	} else {
		src, err = input.Open(opts.Input, input.Options{DefaultModel: opts.Model, SkipInvalid: opts.SkipInvalid})
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

// repeatedFlag is a string flag that may be given many times. Unlike
// urfave.StringSliceFlag it never splits a value at commas (stop=["a","b"] is
// one value), and each parse gets a fresh list, so that flags shared by
// several runs of the app in one process do not accumulate values.
type repeatedFlag struct{ *urfave.StringFlag }

func (f repeatedFlag) Apply(set *flag.FlagSet) error {
	l := new(stringList)
	for _, name := range f.Names() {
		set.Var(l, name, f.Usage)
	}
	return nil
}

// stringList collects the values of a repeatedFlag; read it with
// c.Generic(name).
type stringList []string

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, " ")
}
