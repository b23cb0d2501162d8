package cli

// What a run says it stopped for, and the command that continues it.

import (
	"fmt"
	"strings"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store"
)

// cannotWrite is the error of a run that stopped before its work because
// the database could not be written (a full or read-only disk).
func cannotWrite(o importOptions, job jobs.Job, err error) error {
	return fmt.Errorf("job %s: %w; results committed so far are kept; run `%s` to continue once fixed", job.Name, err, command(o, "run", job.Name))
}

// command is the llmbatch command line that does what args say to the
// database of o: with --db when it is not the default, so that a hint
// printed after a run works as it is.
func command(o importOptions, args ...string) string {
	parts := []string{"llmbatch"}
	if o.DB != defaultDB {
		parts = append(parts, "--db", shellQuote(store.Display(o.DB)))
	}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func fatalHint(c jobs.ErrorClass) string {
	if c == jobs.ClassPayment {
		return "top up the account's balance"
	}
	if c == jobs.ClassTLS {
		return "check the host name in --base-url, or add the server's certificate authority to the system's trust store (or name a CA bundle with SSL_CERT_FILE)"
	}
	return "check the API key (OPENAI_API_KEY or --api-key-file) and its permissions"
}
