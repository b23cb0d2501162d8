// Package cli is llmbatch's command line: one file per command, each an
// options struct with Validate and a function that takes the store (and
// worker) it needs, and app.go, where the app is built and where errors
// become exit codes, in one place.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store"
	"github.com/llmbatch/llmbatch/worker"
	urfave "github.com/urfave/cli/v2"
)

// Exit codes, the contract scripts rely on.
const (
	ExitOK    = 0
	ExitError = 1
	// ExitUsage: an unknown command or flag, a bad flag value.
	ExitUsage = 2
	// ExitSomeFailed: the job finished, but some requests failed or were
	// cancelled.
	ExitSomeFailed = 3
	// ExitFatalAPI: the API refused the run (bad key, no balance).
	ExitFatalAPI = 4
	// ExitBudget: --max-tokens or --max-cost was reached.
	ExitBudget = 5
	// ExitInterrupted: a signal stopped the run.
	ExitInterrupted = 130
)

// DefaultBaseURL is the provider used when neither --base-url nor
// $OPENAI_BASE_URL is set.
const DefaultBaseURL = "https://api.ppinfra.com/v3/openai"

// Main runs the command line in args and returns the exit code. env
// supplies the environment and stdin the standard input, so that tests
// need not change the process's.
func Main(ctx context.Context, args []string, env func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(env, stdin, stdout, stderr)
	var db string // the database the command used, for its errors
	app.Before = func(c *urfave.Context) error {
		db = dbPath(c, env)
		return nil
	}
	err := runApp(ctx, app, args)
	code := exitCode(err)
	if err != nil && code != ExitOK {
		fmt.Fprintf(stderr, "llmbatch: %v\n", describe(err, db))
	}
	return code
}

// runApp checks and orders args (args.go), then runs app on them.
func runApp(ctx context.Context, app *urfave.App, args []string) error {
	if n := len(args); n > 1 && args[n-1] == completeFlag {
		// A shell asks what may come next. urfave/cli answers only when the
		// flag is last, so the flags stay where they are, and what is typed
		// so far may well be unfinished; after "--" it would run the
		// command instead, so nothing is answered.
		if slices.Contains(args, "--") {
			return nil
		}
		return app.RunContext(ctx, args)
	}
	args, err := parseArgs(app, args)
	if err != nil {
		return err
	}
	return app.RunContext(ctx, args)
}

// describe is the message of err: a database that is not one is named as
// the --db it came from, whichever way the command opened it.
func describe(err error, db string) error {
	if nd := store.NotDatabase(db, err); nd != nil && db != "" {
		return fmt.Errorf("--db %w", nd)
	}
	return err
}

// usageError is a mistake in the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// someFailedError ends a run whose job finished with requests failed or
// cancelled.
type someFailedError struct{ error }

func (e someFailedError) Unwrap() error { return e.error }

// exitCode is the one place errors become exit codes: commands return
// errors that say what happened (the sentinels of jobs, the errors of
// worker, usageError, someFailedError), and anything else is exit 1.
func exitCode(err error) int {
	var ue usageError
	var sf someFailedError
	var be *worker.BudgetError
	var ce urfave.ExitCoder
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &be) && be.NoPrice != "":
		return ExitError // a price to give, not a budget to raise
	case errors.Is(err, jobs.ErrBudget):
		return ExitBudget
	case errors.Is(err, jobs.ErrFatalAPI):
		return ExitFatalAPI
	case errors.Is(err, jobs.ErrInterrupted):
		return ExitInterrupted
	case errors.As(err, &sf):
		return ExitSomeFailed
	case errors.As(err, &ce):
		return ce.ExitCode()
	}
	return ExitError
}

func newApp(env func(string) string, stdin io.Reader, stdout, stderr io.Writer) *urfave.App {
	app := &urfave.App{
		Name:  "llmbatch",
		Usage: "run large batches of LLM prompts against OpenAI-compatible APIs, durably",
		Description: `Example:
   llmbatch demo                                              # try it first: no key, no network
   export OPENAI_API_KEY=...
   llmbatch run --model deepseek/deepseek-v3 prompts.jsonl    # Ctrl-C, then run again to resume
   llmbatch status prompts
   llmbatch export prompts -o results.jsonl

Environment:
   OPENAI_API_KEY    the API key (run; or --api-key-file); never stored or logged
   OPENAI_BASE_URL   the API's base URL when --base-url is not given (default ` + DefaultBaseURL + `)
   LLMBATCH_DB       the database when --db is not given
   NO_COLOR          when set, the progress bar has no colour

Shell completion: source <(llmbatch completion bash)   (or zsh, fish)`,
		EnableBashCompletion: true,
		Writer:               stdout,
		ErrWriter:            stderr,
		// Errors are printed once, by realMain, with their exit code.
		ExitErrHandler: func(*urfave.Context, error) {},
		OnUsageError:   onUsageError,
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "db", Value: "llmbatch.db", EnvVars: []string{"LLMBATCH_DB"},
				Usage: "SQLite database `PATH` holding jobs and results"},
		},
		Commands: []*urfave.Command{
			demoCommand(env, stdout, stderr),
			runCommand(env, stdin, stdout, stderr),
			importCommand(env, stdin, stdout, stderr),
			statusCommand(env, stdout),
			jobsCommand(env, stdout),
			exportCommand(env, stdout, stderr),
			copyCommand(env, stdout),
			retryCommand(env, stdout),
			cancelCommand(env, stdout),
			reportCommand(env, stdout, stderr),
			completionCommand(stdout),
		},
	}
	completeFlagsOnly(app.Commands)
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
		cmd.Before = oneArgument(cmd)
	}
	return app
}

// oneArgument refuses more arguments than cmd takes (one, or none for a
// command without ArgsUsage): a forgotten -o would otherwise leave its file
// name unread, and the results on stdout.
func oneArgument(cmd *urfave.Command) urfave.BeforeFunc {
	most := 1
	if cmd.ArgsUsage == "" {
		most = 0
	}
	return func(c *urfave.Context) error {
		if c.NArg() > most {
			return usagef("%s takes %s, not %q (flags may come before or after it)",
				cmd.Name, map[int]string{0: "no argument", 1: "one " + cmd.ArgsUsage}[most], c.Args().Slice())
		}
		return nil
	}
}

// onUsageError makes what urfave/cli finds wrong in the command line, past
// parseArgs's checks, a usage error of one line: without it, urfave/cli
// prints the whole help.
func onUsageError(_ *urfave.Context, err error, _ bool) error {
	return usageError{err}
}
