package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/llmbatch/llmbatch/input"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	urfave "github.com/urfave/cli/v2"
)

func exportCommand(env func(string) string, stdout, stderr io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:        "export",
		Usage:       "write a job's results in input order: JSONL, CSV or Parquet",
		ArgsUsage:   "JOB",
		Description: exportDescription(),
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "format", Value: "openai", Usage: "openai (OpenAI Batch output lines), flat, merged (each dataset record with the answer added), csv or parquet"},
			&urfave.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (mode 0600; written beside it and renamed, so a failed export leaves it as it was) instead of stdout"},
			&urfave.StringFlag{Name: "errors", Usage: "write failed and cancelled requests to `FILE` (in the same format) instead of with the results"},
			&urfave.BoolFlag{Name: "with-request", Usage: "flat, merged, csv, parquet: add the request as sent (request) and its prompt's text (prompt)"},
			// merged: the names of the members added to each record ("" leaves one out).
			&urfave.StringFlag{Name: "answer-field", Value: output.DefaultMergedFields.Answer, Usage: "merged: `NAME` of the answer's field"},
			&urfave.StringFlag{Name: "reasoning-field", Value: output.DefaultMergedFields.Reasoning, Usage: "merged: `NAME` of the reasoning's field"},
			&urfave.StringFlag{Name: "embedding-field", Value: output.DefaultMergedFields.Embedding, Usage: "merged: `NAME` of an embeddings answer's vector field"},
			&urfave.StringFlag{Name: "usage-field", Value: output.DefaultMergedFields.Usage, Usage: "merged: `NAME` of the token usage's field"},
			&urfave.StringFlag{Name: "status-field", Value: output.DefaultMergedFields.Status, Usage: "merged: `NAME` of the status's field"},
			&urfave.StringFlag{Name: "request-field", Value: output.DefaultMergedFields.Request, Usage: "merged with --with-request: `NAME` of the request's field"},
			&urfave.StringFlag{Name: "prompt-field", Value: output.DefaultMergedFields.Prompt, Usage: "merged with --with-request: `NAME` of the prompt's field"},
		},
		Action: func(c *urfave.Context) error {
			opts := exportOptionsFrom(c)
			if err := opts.Validate(); err != nil {
				return err
			}
			return withStore(c, env, func(ctx context.Context, st jobs.Store) error {
				return runExport(ctx, st, opts, stdout, stderr)
			})
		},
	}
}

// exportDescription is export's help: examples, the formats, and the
// columns of csv and parquet as output writes them.
func exportDescription() string {
	var cols []string
	for _, c := range output.Columns(output.ExportOptions{Samples: 2, WithRequest: true}) {
		cols = append(cols, c.Name+" "+c.Type)
	}
	return `Example:
   llmbatch export prompts -o results.jsonl --errors errors.jsonl
   llmbatch export --format flat prompts | jq -r .content
   llmbatch export --format parquet prompts -o results.parquet
   python3 -c "import pandas as pd; print(pd.read_parquet('results.parquet'))"
   duckdb -c "SELECT status, count(*), sum(total_tokens) FROM 'results.parquet' GROUP BY status"

Formats (one record per finished request, in input order):
   openai   the OpenAI Batch output line: {"id", "custom_id", "response": {"status_code",
            "request_id", "body"}, "error"}; bodies byte for byte (the default)
   flat     one JSON object: custom_id, status, model, content, reasoning_content,
            finish_reason, embedding (embeddings requests), usage, latency_ms, error, metadata
   merged   each dataset record with answer, reasoning, embedding (embeddings requests),
            usage and status added (renamed with --answer-field and the like)
   csv      RFC 4180 with a header row, UTF-8, CRLF; the columns below, vectors and
            metadata as JSON text, a null as an empty field
   parquet  the columns below, typed, zstd-compressed, in row groups; read as they are by
            DuckDB, pandas, Polars and Hugging Face datasets

Columns of csv and parquet, in order (null where there is no value: no result, no usage):
   ` + wrapList(cols, 88, "   ") + `
   sample only with --samples K above 1 (custom_id is then the line's own, without #i);
   request and prompt only with --with-request; embedding is set for embeddings requests;
   then, for a job made from a dataset (--template, a .txt file), each field of its
   records as a column of its own type (renamed dataset_NAME where it is one of ours).`
}

// wrapList joins items with ", " in lines of at most width, the lines after
// the first indented by indent.
func wrapList(items []string, width int, indent string) string {
	var b strings.Builder
	line := 0
	for i, it := range items {
		if i > 0 {
			b.WriteString(",")
			line++
			if line+1+len(it) > width {
				b.WriteString("\n" + indent)
				line = 0
			} else {
				b.WriteString(" ")
				line++
			}
		}
		b.WriteString(it)
		line += len(it)
	}
	return b.String()
}

// exportOptions are the flags of the export command.
type exportOptions struct {
	Job    string
	Format string
	// Merged are the names of the members --format merged adds.
	Merged output.MergedFields
	// Output and Errors are the files to write ("" or "-": stdout; Errors
	// "" or "-": with the results).
	Output, Errors string
	// WithRequest adds the request as sent.
	WithRequest bool
}

func exportOptionsFrom(c *urfave.Context) exportOptions {
	return exportOptions{Job: c.Args().First(), Format: c.String("format"), Output: c.String("output"), Errors: c.String("errors"),
		WithRequest: c.Bool("with-request"),
		Merged: output.MergedFields{Answer: c.String("answer-field"), Reasoning: c.String("reasoning-field"),
			Embedding: c.String("embedding-field"), Usage: c.String("usage-field"), Status: c.String("status-field"),
			Request: c.String("request-field"), Prompt: c.String("prompt-field")}}
}

// Validate checks the format, --with-request and the merged fields' names.
func (o exportOptions) Validate() error {
	f, err := output.ParseFormat(o.Format)
	if err != nil {
		return usageError{err}
	}
	if o.WithRequest && f == output.FormatOpenAI {
		return usagef("--with-request adds the request to flat, merged, csv and parquet; the openai format keeps OpenAI's shape")
	}
	if o.Output != "" && o.Output != "-" && o.Output == o.Errors {
		return usagef("--output and --errors name the same file %s", o.Output)
	}
	if err := o.Merged.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// runExport writes the job's finished requests in input order.
func runExport(ctx context.Context, st jobs.Store, o exportOptions, stdout, stderr io.Writer) error {
	job, err := findJob(ctx, st, o.Job)
	if err != nil {
		return err
	}
	format, _ := output.ParseFormat(o.Format) // checked by Validate
	spec := exportSpec{exportFormat: exportFormat{format, o.Merged}, withRequest: o.WithRequest}
	return exportJob(ctx, st, job, spec, o.Output, o.Errors, stdout, stderr)
}

// exportFormat is the format and, for merged, the names of the added fields.
type exportFormat struct {
	output.Format
	merged output.MergedFields
}

// exportSpec is what an export writes.
type exportSpec struct {
	exportFormat
	withRequest bool
}

// export writes the job in format, as it is without --with-request.
func export(ctx context.Context, st jobs.Store, job jobs.Job, format exportFormat, outPath, errPath string, stdout, stderr io.Writer) error {
	return exportJob(ctx, st, job, exportSpec{exportFormat: format}, outPath, errPath, stdout, stderr)
}

func exportJob(ctx context.Context, st jobs.Store, job jobs.Job, spec exportSpec, outPath, errPath string, stdout, stderr io.Writer) error {
	opts, err := exportOptionsOf(ctx, st, job, spec)
	if err != nil {
		return err
	}
	out, err := createOutput(outPath, stdout)
	if err != nil {
		return err
	}
	defer out.discard()
	var errs io.Writer
	var errsFile *outputFile
	if errPath != "" && errPath != "-" { // "-": with the results, as without --errors
		if errsFile, err = createOutput(errPath, nil); err != nil {
			return err
		}
		defer errsFile.discard()
		errs = errsFile
	}
	ex := output.NewExporter(spec.Format, job.Name, out, errs)
	ex.SetMergedFields(spec.merged)
	ex.SetOptions(opts)
	if err := st.RecordsWith(ctx, job.ID, jobs.RecordOptions{Bodies: spec.withRequest}, ex.Write); err != nil {
		return err
	}
	if err := ex.Flush(); err != nil {
		return err
	}
	if err := out.commit(); err != nil {
		return err
	}
	if errsFile != nil {
		if err := errsFile.commit(); err != nil {
			return err
		}
	}
	n := ex.Counts()
	fmt.Fprintf(stderr, "llmbatch: job %s: exported %d succeeded, %d failed, %d cancelled", job.Name, n.Succeeded, n.Failed, n.Cancelled)
	if n.Unfinished > 0 {
		fmt.Fprintf(stderr, "; %s (not exported)", output.Plural(n.Unfinished, "request")+" not finished yet")
	}
	fmt.Fprintln(stderr)
	return nil
}

// exportOptionsOf is what the job adds to its export: its samples, and for
// csv and parquet of a dataset job the dataset's columns, learnt from its
// records in a pass of their own (a parquet file's columns are fixed before
// its first row).
func exportOptionsOf(ctx context.Context, st jobs.Store, job jobs.Job, spec exportSpec) (output.ExportOptions, error) {
	o := output.ExportOptions{WithRequest: spec.withRequest}
	if v := job.Settings.Shape["samples"]; len(v) == 1 {
		o.Samples, _ = strconv.Atoi(v[0])
	}
	if spec.Format != output.FormatCSV && spec.Format != output.FormatParquet || !isDatasetJob(job) {
		return o, nil
	}
	d := output.NewDatasetColumns()
	if err := st.Records(ctx, job.ID, d.Observe); err != nil {
		return o, err
	}
	o.Dataset = d
	return o, nil
}

// isDatasetJob reports whether the job's requests were made from a
// dataset's records (--template, a .txt or .csv file), so that their
// metadata is the record, rather than from a file of requests.
func isDatasetJob(job jobs.Job) bool {
	if _, ok := job.Settings.Shape["template"]; ok {
		return true
	}
	if f, ok := job.Settings.Shape["input-format"]; ok {
		return len(f) == 1 && f[0] != "jsonl"
	}
	return input.FormatOf(job.Source) != input.FormatJSONL
}
