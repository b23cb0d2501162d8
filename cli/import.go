package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	urfave "github.com/urfave/cli/v2"
)

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
				return runDryRun(withStdin(importOptionsFrom(c, env), stdin), priceOptionsFrom(c), output.PlanLimits{}, batchOptions{}, stdout)
			}
			opts := withStdin(importOptionsFrom(c, env), stdin)
			if po := priceOptionsFrom(c); po.given() {
				// Stored with the job, as run stores them: status and
				// report price with them.
				prices, err := po.load()
				if err != nil {
					return err
				}
				opts.Settings.Prices = &prices
			}
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
	return withInputJob(ctx, opts, false, func(_ jobs.Store, _ importOptions, job jobs.Job, imported bool) error {
		verb := "already imported"
		if imported {
			verb = "imported"
		}
		fmt.Fprintf(stdout, "job %s: %s %s from %s\n", job.Name, output.Plural(job.Total, "request"), verb, job.Source)
		return nil
	})
}
