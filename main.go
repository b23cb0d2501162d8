// Command llmbatch runs large batches of LLM prompts against
// OpenAI-compatible APIs, stores every request and result in SQLite, and
// resumes exactly where it stopped after any interruption. The commands
// live in package cli; this is the entry point only.
package main

import (
	"context"
	"os"
	"runtime"

	"github.com/llmbatch/llmbatch/cli"
)

func main() {
	// One P more than the CPUs (unless $GOMAXPROCS says otherwise): the
	// store's writer spends milliseconds at a time inside SQLite's fsync, a
	// cgo call that holds its P, and the HTTP side would then have one
	// core fewer meanwhile (BENCHMARKS.md, "second pass").
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
	os.Exit(cli.Main(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}
