package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	"github.com/llmbatch/llmbatch/store"
	"github.com/urfave/cli/v2"
)

func exportCommand(env func(string) string, stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a job's results as JSONL, in input order",
		ArgsUsage: "JOB",
		Description: `Example:
   llmbatch export prompts -o results.jsonl --errors errors.jsonl
   llmbatch export --format flat prompts | jq -r .content`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "openai", Usage: "openai (OpenAI Batch output lines), flat, or merged (each dataset record with the answer added)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (mode 0600) instead of stdout"},
			&cli.StringFlag{Name: "errors", Usage: "write failed and cancelled requests to `FILE` instead of with the results"},
			// merged: the names of the members added to each record ("" leaves one out).
			&cli.StringFlag{Name: "answer-field", Value: output.DefaultMergedFields.Answer, Usage: "merged: `NAME` of the answer's field"},
			&cli.StringFlag{Name: "reasoning-field", Value: output.DefaultMergedFields.Reasoning, Usage: "merged: `NAME` of the reasoning's field"},
			&cli.StringFlag{Name: "usage-field", Value: output.DefaultMergedFields.Usage, Usage: "merged: `NAME` of the token usage's field"},
			&cli.StringFlag{Name: "status-field", Value: output.DefaultMergedFields.Status, Usage: "merged: `NAME` of the status's field"},
		},
		Action: func(c *cli.Context) error {
			format, err := output.ParseFormat(c.String("format"))
			if err != nil {
				return withCode(exitError, err)
			}
			merged := output.MergedFields{Answer: c.String("answer-field"), Reasoning: c.String("reasoning-field"),
				Usage: c.String("usage-field"), Status: c.String("status-field")}
			if err := merged.Validate(); err != nil {
				return withCode(exitError, err)
			}
			return withStore(c, env, func(ctx context.Context, st *store.Store) error {
				job, err := findJob(ctx, st, c.Args().First())
				if err != nil {
					return err
				}
				return export(ctx, st, job, exportFormat{format, merged}, c.String("output"), c.String("errors"), stdout, stderr)
			})
		},
	}
}

// exportFormat is the format and, for merged, the names of the added fields.
type exportFormat struct {
	output.Format
	merged output.MergedFields
}

func export(ctx context.Context, st *store.Store, job jobs.Job, format exportFormat, outPath, errPath string, stdout, stderr io.Writer) (err error) {
	out, closeOut, err := createOutput(outPath, stdout)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeOut()) }()
	var errs io.Writer
	if errPath != "" {
		w, closeErrs, err := createOutput(errPath, nil)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, closeErrs()) }()
		errs = w
	}
	ex := output.NewExporter(format.Format, job.Name, out, errs)
	ex.SetMergedFields(format.merged)
	if err := st.Records(ctx, job.ID, ex.Write); err != nil {
		return err
	}
	if err := ex.Flush(); err != nil {
		return err
	}
	n := ex.Counts()
	fmt.Fprintf(stderr, "llmbatch: job %s: exported %d succeeded, %d failed, %d cancelled", job.Name, n.Succeeded, n.Failed, n.Cancelled)
	if n.Unfinished > 0 {
		fmt.Fprintf(stderr, "; %d not finished yet (not exported)", n.Unfinished)
	}
	fmt.Fprintln(stderr)
	return nil
}

// createOutput opens path for writing with mode 0600, or returns def when
// path is empty or "-".
func createOutput(path string, def io.Writer) (io.Writer, func() error, error) {
	if path == "" || path == "-" {
		return def, func() error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, withCode(exitError, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, nil, withCode(exitError, err)
	}
	return f, f.Close, nil
}
