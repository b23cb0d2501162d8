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
			&cli.StringFlag{Name: "format", Value: "openai", Usage: "openai (OpenAI Batch output lines) or flat"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (mode 0600) instead of stdout"},
			&cli.StringFlag{Name: "errors", Usage: "write failed and cancelled requests to `FILE` instead of with the results"},
		},
		Action: func(c *cli.Context) error {
			format, err := output.ParseFormat(c.String("format"))
			if err != nil {
				return withCode(exitError, err)
			}
			return withStore(c, env, func(ctx context.Context, st *store.Store) error {
				job, err := findJob(ctx, st, c.Args().First())
				if err != nil {
					return err
				}
				return export(ctx, st, job, format, c.String("output"), c.String("errors"), stdout, stderr)
			})
		},
	}
}

func export(ctx context.Context, st *store.Store, job jobs.Job, format output.Format, outPath, errPath string, stdout, stderr io.Writer) (err error) {
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
	ex := output.NewExporter(format, job.Name, out, errs)
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
