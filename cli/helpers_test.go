package cli

import (
	"github.com/llmbatch/llmbatch/internal/clitest"
	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// testKey is the API key the tests' fake server expects.
const testKey = clitest.Key

// The command line in-process, and the helpers shared with e2e's tests.
var (
	app         = clitest.CLI{Main: Main}
	runCLI      = app.Run
	statusJSON  = app.StatusJSON
	exportJSONL = app.ExportJSONL
	keyEnv      = clitest.KeyEnv
	writeLines  = clitest.WriteLines
	writeFile   = clitest.WriteFile
	chatLines   = clitest.ChatLines
	count       = clitest.Count
	decodeLines = clitest.DecodeLines
	settled     = clitest.Settled
)

// runArgs is a run against srv with short retry delays.
func runArgs(db string, srv *fakeapi.Server, extra ...string) []string {
	return append([]string{"--db", db, "run", "--base-url", srv.URL(), "--retry-delay", "10ms",
		"--max-retry-delay", "50ms"}, extra...)
}
