// Package e2e holds the tests of the whole binary: runs killed with
// SIGKILL, interrupted, racing for one job, on full and read-only disks,
// against hostile servers and outages, with the real binary built once
// (binary) and the command line run in-process (runCLI) beside it, and
// the fake API on loopback. Read a database with queryInt and openSQL.
package e2e

import (
	"github.com/llmbatch/llmbatch/cli"
	"github.com/llmbatch/llmbatch/internal/clitest"
)

// testKey is the API key the tests' fake server expects; tests search every
// file the command line writes for it.
const testKey = clitest.Key

// The command line in-process, and the helpers shared with cli's tests.
var (
	app         = clitest.CLI{Main: cli.Main}
	runCLI      = app.Run
	mustCLI     = app.Must
	exportJSONL = app.ExportJSONL
	statusJSON  = app.StatusJSON
	keyEnv      = clitest.KeyEnv
	writeLines  = clitest.WriteLines
	writeFile   = clitest.WriteFile
	chatLine    = clitest.ChatLine
	chatLines   = clitest.ChatLines
	decodeLines = clitest.DecodeLines
	count       = clitest.Count
	settled     = clitest.Settled
	waitUntil   = clitest.WaitUntil
)

// The exit codes, as scripts see them.
const (
	exitError       = cli.ExitError
	exitUsage       = cli.ExitUsage
	exitSomeFailed  = cli.ExitSomeFailed
	exitFatalAPI    = cli.ExitFatalAPI
	exitBudget      = cli.ExitBudget
	exitInterrupted = cli.ExitInterrupted
)
