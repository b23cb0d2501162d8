// Command llmbatch runs large batches of LLM prompts against
// OpenAI-compatible APIs, stores every request and result in SQLite, and
// resumes exactly where it stopped after any interruption.
//
// This file builds the command line and maps errors to exit codes; each
// command lives in a cmd_*.go file as an options struct with Validate and a
// function that takes its writers, so tests call the commands directly.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store"
	"github.com/urfave/cli/v2"
)

// Exit codes, the contract scripts rely on.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2 // an unknown command or flag, a bad flag value
	exitSomeFailed  = 3
	exitFatalAPI    = 4
	exitBudget      = 5
	exitInterrupted = 130
)

// DefaultBaseURL is the provider used when neither --base-url nor
// $OPENAI_BASE_URL is set.
const DefaultBaseURL = "https://api.ppinfra.com/v3/openai"

func main() {
	// One P more than the CPUs (unless $GOMAXPROCS says otherwise): the
	// store's writer spends milliseconds at a time inside SQLite (its
	// fsync), a cgo call that holds its P until the scheduler takes it
	// back, and on a 2-core machine the HTTP side then runs on one core
	// meanwhile. With one P more, a 50 ms-latency run reaches 96 % of its
	// ideal rate instead of 94 %, in half the commits (BENCHMARKS.md).
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
	os.Exit(realMain(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr))
}

// realMain runs the command line in args and returns the exit code. env
// supplies the environment, so that tests need not change the process's.
func realMain(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	app := newApp(env, stdout, stderr)
	var db string // the database the command used, for its errors
	app.Before = func(c *cli.Context) error {
		db = dbPath(c, env)
		return nil
	}
	err := runApp(ctx, app, args)
	code := exitCode(err)
	if err != nil && code != exitOK {
		fmt.Fprintf(stderr, "llmbatch: %v\n", describe(err, db))
	}
	return code
}

// runApp checks and orders args (args.go), then runs app on them.
func runApp(ctx context.Context, app *cli.App, args []string) error {
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

// codedError carries a message and the exit code it maps to.
type codedError struct {
	err  error
	code int
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &codedError{err: err, code: code} }

func exitCode(err error) int {
	var ee *codedError
	var ce cli.ExitCoder
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, jobs.ErrFatalAPI):
		return exitFatalAPI
	case errors.Is(err, jobs.ErrInterrupted):
		return exitInterrupted
	case errors.As(err, &ce):
		return ce.ExitCode()
	default:
		return exitError
	}
}

func newApp(env func(string) string, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "llmbatch",
		Usage: "run large batches of LLM prompts against OpenAI-compatible APIs, durably",
		Description: `Example:
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
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "db", Value: "llmbatch.db", EnvVars: []string{"LLMBATCH_DB"},
				Usage: "SQLite database `PATH` holding jobs and results"},
		},
		Commands: []*cli.Command{
			runCommand(env, stdout, stderr),
			importCommand(env, stdout, stderr),
			statusCommand(env, stdout),
			jobsCommand(env, stdout),
			exportCommand(env, stdout, stderr),
			retryCommand(env, stdout),
			cancelCommand(env, stdout),
			reportCommand(env, stdout, stderr),
			completionCommand(stdout),
		},
	}
	completeFlagsOnly(app.Commands)
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
	}
	return app
}

// onUsageError makes what urfave/cli finds wrong in the command line, past
// parseArgs's checks, a usage error of one line: without it, urfave/cli
// prints the whole help.
func onUsageError(_ *cli.Context, err error, _ bool) error {
	return withCode(exitUsage, err)
}
