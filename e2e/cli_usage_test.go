package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/cli"
	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// TestCLIUsageErrors: a mistake in the command line exits 2 with one line on
// stderr, naming the closest command or flag when one is close, and prints
// nothing on stdout (never the whole help).
func TestCLIUsageErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "never.db")
	tests := []struct {
		name string
		args []string
		want string // the whole line, after "llmbatch: "
	}{
		{"UnknownCommand", []string{"staus"}, `unknown command "staus"; did you mean "status"?`},
		{"UnknownCommandNoSuggestion", []string{"frobnicate", "x"}, `unknown command "frobnicate" (llmbatch --help lists the commands)`},
		{"UnknownCommandAfterGlobalFlag", []string{"--db", db, "exprot", "j"}, `unknown command "exprot"; did you mean "export"?`},
		{"HelpOfUnknownCommand", []string{"help", "staus"}, `unknown command "staus"; did you mean "status"?`},
		{"UnknownFlag", []string{"run", "--concurency", "4", "p.jsonl"}, "unknown flag --concurency; did you mean --concurrency?"},
		{"UnknownFlagAfterArgument", []string{"export", "j", "--fromat", "flat"}, "unknown flag --fromat; did you mean --format?"},
		{"UnknownFlagNoSuggestion", []string{"run", "--frobnicate", "p.jsonl"}, "unknown flag --frobnicate (llmbatch run --help lists the flags)"},
		{"UnknownGlobalFlag", []string{"--dbb", db, "jobs"}, "unknown flag --dbb; did you mean --db?"},
		{"UnknownFlagKeepsItsValueSecret", []string{"run", "--api-key=sk-secret-value", "p.jsonl"}, "unknown flag --api-key (llmbatch run --help lists the flags)"},
		{"DurationWithoutUnit", []string{"run", "--timeout", "30", "p.jsonl"}, `invalid value "30" for --timeout: a duration needs a unit; use 30s, 10m`},
		{"DurationWithoutUnitInline", []string{"status", "--watch", "--interval=2"}, `invalid value "2" for --interval: a duration needs a unit; use 30s, 10m`},
		{"NotADuration", []string{"run", "p.jsonl", "--retry-delay", "soon"}, `invalid value "soon" for --retry-delay: not a duration; use 30s, 10m`},
		{"NotAnInt", []string{"run", "--concurrency", "four", "p.jsonl"}, `invalid value "four" for --concurrency: want a whole number`},
		{"IntOutOfRange", []string{"run", "--max-attempts", "99999999999999999999", "p.jsonl"}, `invalid value "99999999999999999999" for --max-attempts: out of range`},
		{"NotABool", []string{"run", "--stream=maybe", "p.jsonl"}, `invalid value "maybe" for --stream: want true or false`},
		{"MissingValue", []string{"export", "j", "-o"}, "flag -o needs a value"},
		{"TwoArguments", []string{"--db", db, "export", "j", "results.jsonl"}, `export takes one JOB, not ["j" "results.jsonl"] (flags may come before or after it)`},
		{"ArgumentToJobs", []string{"--db", db, "jobs", "j"}, `jobs takes no argument, not ["j"] (flags may come before or after it)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, keyEnv(), tc.args...)
			if res.Code != exitUsage {
				t.Errorf("exit %d, want %d", res.Code, exitUsage)
			}
			if got, want := res.Stderr, "llmbatch: "+tc.want+"\n"; got != want {
				t.Errorf("stderr:\n%q\nwant\n%q", got, want)
			}
			if res.Stdout != "" {
				t.Errorf("stdout %q, want nothing", res.Stdout)
			}
		})
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("a usage error created the database: %v", err)
	}
}

// TestCLIHelpStaysHelp: what asks for help still gets it, on stdout, exit 0.
func TestCLIHelpStaysHelp(t *testing.T) {
	for _, args := range [][]string{{}, {"--help"}, {"-h"}, {"run", "--help"}, {"export", "j", "-h"}} {
		res := runCLI(t, nil, args...)
		if res.Code != cli.ExitOK || !strings.Contains(res.Stdout, "USAGE:") || res.Stderr != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout:\n%s", args, res.Code, res.Stderr, res.Stdout)
		}
	}
	// The help command runs in the binary: run in-process, urfave/cli
	// makes its (package-level) help command a subcommand of itself, and
	// the fish completion of a later test would then recurse for ever.
	bin := binary(t)
	for _, args := range [][]string{{"help"}, {"help", "run"}} {
		var stderr strings.Builder
		cmd := exec.Command(bin, args...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "USAGE:") || stderr.Len() > 0 {
			t.Errorf("%v: %v, stderr %q, stdout:\n%s", args, err, stderr.String(), out)
		}
	}
}

// TestCLIGlobalFlagsAfterCommand: --db is read wherever it stands.
func TestCLIGlobalFlagsAfterCommand(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "late.jsonl", chatLines(3)...)
	db := filepath.Join(dir, "t.db")
	t.Chdir(dir) // the default ./llmbatch.db must stay unused
	if res := runCLI(t, keyEnv(), "run", "--base-url", srv.URL(), file, "--db", db); res.Code != cli.ExitOK {
		t.Fatalf("run FILE --db: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := runCLI(t, nil, "status", "late", "--db", db); res.Code != cli.ExitOK || !strings.Contains(res.Stdout, "succeeded") {
		t.Errorf("status JOB --db: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if res := runCLI(t, nil, "jobs", "--db="+db); res.Code != cli.ExitOK || !strings.Contains(res.Stdout, "late") {
		t.Errorf("jobs --db=: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	out := filepath.Join(dir, "out.jsonl")
	if res := runCLI(t, nil, "export", "late", "--db", db, "-o", out); res.Code != cli.ExitOK || res.Stdout != "" {
		t.Fatalf("export JOB --db -o: exit %d, stdout %q\n%s", res.Code, res.Stdout, res.Stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(decodeLines(t, string(b))); n != 3 {
		t.Errorf("export wrote %d lines, want 3", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "llmbatch.db")); !os.IsNotExist(err) {
		t.Errorf("a command used the default database instead of --db: %v", err)
	}
}

// TestCLIDBNotADatabase: --db naming a text or JSONL file says so in one line,
// exits 1, and leaves the file as it was, whatever the command.
func TestCLIDBNotADatabase(t *testing.T) {
	dir := t.TempDir()
	input := writeLines(t, dir, "p.jsonl", chatLines(2)...)
	for _, tc := range []struct{ name, content string }{
		{"notes.txt", "my notes\nabout the run\n"},
		{"prompts.jsonl", strings.Repeat(`{"model":"m","prompt":"p"}`+"\n", 40)},
	} {
		path := writeFile(t, dir, tc.name, tc.content)
		for _, args := range [][]string{
			{"--db", path, "import", input},
			{"run", input, "--db", path},
			{"status", "--db", path},
			{"jobs", "--db", path},
			{"export", "p", "--db", path},
			{"report", "p", "--db", path, "-o", filepath.Join(dir, "r.html")},
		} {
			t.Run(tc.name+"/"+args[0]+args[2], func(t *testing.T) {
				res := runCLI(t, keyEnv(), args...)
				want := "llmbatch: --db " + path + ": not an llmbatch database (file is not a database)\n"
				if res.Code != exitError || res.Stderr != want {
					t.Errorf("exit %d, stderr\n%q\nwant exit 1 and\n%q", res.Code, res.Stderr, want)
				}
				b, err := os.ReadFile(path)
				if err != nil || string(b) != tc.content {
					t.Errorf("the file changed: %q, %v", b, err)
				}
			})
		}
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if m, _ := filepath.Glob(filepath.Join(dir, "*"+suffix)); len(m) > 0 {
			t.Errorf("files left beside: %v", m)
		}
	}
}

// TestCLICompletionSkipsUsageChecks: a line being completed is unfinished
// by nature: asking for its completions is never a usage error.
func TestCLICompletionSkipsUsageChecks(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--timeout", "30", "--max-a"}, "--max-attempts"},
		{[]string{"run", "--concurency"}, ""},
		{[]string{"staus"}, "status"}, // the commands
		{[]string{"--dbb"}, ""},
	} {
		cmd := exec.Command(bin, append(tc.args, "--generate-bash-completion")...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LLMBATCH_DB="+filepath.Join(dir, "never.db"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: %v, stderr %q, completions %q; want exit 0, no stderr, %q among them", tc.args, err, stderr.String(), out, tc.want)
		}
	}
}
