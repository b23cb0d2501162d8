package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	urfave "github.com/urfave/cli/v2"
)

func exportCommand(env func(string) string, stdout, stderr io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:      "export",
		Usage:     "write a job's results as JSONL, in input order",
		ArgsUsage: "JOB",
		Description: `Example:
   llmbatch export prompts -o results.jsonl --errors errors.jsonl
   llmbatch export --format flat prompts | jq -r .content`,
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "format", Value: "openai", Usage: "openai (OpenAI Batch output lines), flat, or merged (each dataset record with the answer added)"},
			&urfave.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (mode 0600; written beside it and renamed, so a failed export leaves it as it was) instead of stdout"},
			&urfave.StringFlag{Name: "errors", Usage: "write failed and cancelled requests to `FILE` instead of with the results"},
			// merged: the names of the members added to each record ("" leaves one out).
			&urfave.StringFlag{Name: "answer-field", Value: output.DefaultMergedFields.Answer, Usage: "merged: `NAME` of the answer's field"},
			&urfave.StringFlag{Name: "reasoning-field", Value: output.DefaultMergedFields.Reasoning, Usage: "merged: `NAME` of the reasoning's field"},
			&urfave.StringFlag{Name: "usage-field", Value: output.DefaultMergedFields.Usage, Usage: "merged: `NAME` of the token usage's field"},
			&urfave.StringFlag{Name: "status-field", Value: output.DefaultMergedFields.Status, Usage: "merged: `NAME` of the status's field"},
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

// exportOptions are the flags of the export command.
type exportOptions struct {
	Job    string
	Format string
	// Merged are the names of the members --format merged adds.
	Merged output.MergedFields
	// Output and Errors are the files to write ("" or "-": stdout; Errors
	// "" or "-": with the results).
	Output, Errors string
}

func exportOptionsFrom(c *urfave.Context) exportOptions {
	return exportOptions{Job: c.Args().First(), Format: c.String("format"), Output: c.String("output"), Errors: c.String("errors"),
		Merged: output.MergedFields{Answer: c.String("answer-field"), Reasoning: c.String("reasoning-field"),
			Usage: c.String("usage-field"), Status: c.String("status-field")}}
}

// Validate checks the format and the merged fields' names.
func (o exportOptions) Validate() error {
	if _, err := output.ParseFormat(o.Format); err != nil {
		return err
	}
	return o.Merged.Validate()
}

// runExport writes the job's finished requests in input order.
func runExport(ctx context.Context, st jobs.Store, o exportOptions, stdout, stderr io.Writer) error {
	job, err := findJob(ctx, st, o.Job)
	if err != nil {
		return err
	}
	format, _ := output.ParseFormat(o.Format) // checked by Validate
	return export(ctx, st, job, exportFormat{format, o.Merged}, o.Output, o.Errors, stdout, stderr)
}

// exportFormat is the format and, for merged, the names of the added fields.
type exportFormat struct {
	output.Format
	merged output.MergedFields
}

func export(ctx context.Context, st jobs.Store, job jobs.Job, format exportFormat, outPath, errPath string, stdout, stderr io.Writer) error {
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
	ex := output.NewExporter(format.Format, job.Name, out, errs)
	ex.SetMergedFields(format.merged)
	if err := st.Records(ctx, job.ID, ex.Write); err != nil {
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
