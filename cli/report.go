package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	urfave "github.com/urfave/cli/v2"
)

// reportOptions are the flags of the report command.
type reportOptions struct {
	Job string
	// Output is the file to write, "-" for stdout, "" for JOB.html.
	Output string
	priceOptions
	// extra are the arguments after the job's name: none is allowed.
	extra []string
}

func reportCommand(env func(string) string, stdout, stderr io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:      "report",
		Usage:     "write a job's report as one self-contained HTML file: throughput, latency, tokens, cost, errors",
		ArgsUsage: "[JOB]",
		Description: `Example:
   llmbatch report prompts --price deepseek/deepseek-r1=0.55:2.19:0.14 --currency USD

The file (prompts.html here; mode 0600) holds its styles and its charts
(inline SVG), and loads nothing from the network when opened; "-o -" writes
it to stdout. It is written beside the file named and renamed, so a report
that fails leaves an older one as it was.`,
		Flags: append([]urfave.Flag{
			&urfave.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the report to `FILE` (mode 0600; default JOB.html); - for stdout"},
		}, priceFlags()...),
		Action: func(c *urfave.Context) error {
			opts := reportOptionsFrom(c)
			if err := opts.Validate(); err != nil {
				return err
			}
			return withPrices(c, env, opts.priceOptions, func(ctx context.Context, st jobs.Store, prices jobs.Prices) error {
				return runReport(ctx, st, opts, prices, stdout, stderr)
			})
		},
	}
}

// reportOptionsFrom reads the flags and the job name.
func reportOptionsFrom(c *urfave.Context) reportOptions {
	return reportOptions{Output: c.String("output"), priceOptions: priceOptionsFrom(c), Job: c.Args().First(),
		extra: c.Args().Tail()}
}

// Validate checks that one job at most is named.
func (o reportOptions) Validate() error {
	if len(o.extra) > 0 {
		return fmt.Errorf("name one JOB, not %q", append([]string{o.Job}, o.extra...))
	}
	return nil
}

// runReport reads the job's report data and writes the HTML file.
func runReport(ctx context.Context, st jobs.Store, o reportOptions, prices jobs.Prices, stdout, stderr io.Writer) error {
	job, err := findJob(ctx, st, o.Job)
	if err != nil {
		return err
	}
	rep, err := st.Report(ctx, job.ID, jobs.DefaultReportOptions)
	if err != nil {
		return err
	}
	path := o.Output
	if path == "" {
		path = reportFileName(job.Name)
	}
	out, err := createOutput(path, stdout)
	if err != nil {
		return err
	}
	defer out.discard()
	info := output.ReportInfo{Prices: jobPrices(job, prices), Generated: time.Now(), Location: time.Local}
	if err := output.WriteReport(out, rep, info); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := out.commit(); err != nil {
		return err
	}
	if path != "-" {
		fmt.Fprintf(stderr, "llmbatch: job %s: report written to %s\n", job.Name, path)
	}
	return nil
}

// reportFileName is where a job's report goes without -o: JOB.html in the
// current directory, with any path separator in the name made a "_".
func reportFileName(job string) string {
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator {
			return '_'
		}
		return r
	}, job)
	return name + ".html"
}
