package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// appCommands are the names of the commands the completion lists.
var appCommands = []string{"run", "import", "status", "jobs", "export", "retry", "cancel", "report", "completion"}

func TestCompletionScripts(t *testing.T) {
	for _, tc := range []struct {
		shell string
		want  []string
	}{
		{"bash", []string{"complete -o bashdefault -o default -F _llmbatch_complete llmbatch", completeFlag}},
		{"zsh", []string{"#compdef llmbatch", "compdef _llmbatch llmbatch", completeFlag}},
		{"fish", []string{"complete -c llmbatch", "-a 'run'", "-l concurrency", "-l log-interval"}},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			res := runCLI(t, nil, "completion", tc.shell)
			if res.code != ExitOK {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("%s script lacks %q:\n%s", tc.shell, w, res.stdout)
				}
			}
			checkSyntax(t, tc.shell, res.stdout)
		})
	}
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}} {
		if res := runCLI(t, nil, args...); res.code != ExitError || !strings.Contains(res.stderr, "bash, zsh or fish") {
			t.Errorf("%v: exit %d, stderr %q; want 1 naming the shells", args, res.code, res.stderr)
		}
	}
}

// checkSyntax parses script with its shell, where that shell is installed.
func checkSyntax(t *testing.T, shell, script string) {
	t.Helper()
	path, err := exec.LookPath(shell)
	if err != nil {
		t.Logf("%s not installed: syntax not checked", shell)
		return
	}
	file := filepath.Join(t.TempDir(), "completion."+shell)
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(path, "-n", file).CombinedOutput(); err != nil {
		t.Errorf("%s -n: %v\n%s", shell, err, out)
	}
}

// TestCompletionAnswers asks the built binary, as the scripts do: urfave/cli
// reads the word being completed from the process's arguments.
func TestCompletionAnswers(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	ask := func(args ...string) []string {
		t.Helper()
		cmd := exec.Command(bin, append(args, completeFlag)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LLMBATCH_DB="+filepath.Join(dir, "never.db"), "OPENAI_API_KEY="+testKey)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return strings.Fields(string(out))
	}
	got := strings.Join(ask(), " ")
	for _, name := range appCommands {
		if !strings.Contains(" "+got+" ", " "+name+" ") {
			t.Errorf("top-level completion %q lacks %q", got, name)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--con"}, "--concurrency"},
		{[]string{"export", "--f"}, "--format"},
		{[]string{"--d"}, "--db"},
		{[]string{"run"}, ""},                        // a file or job name: the shell's to complete
		{[]string{"run", "prompts.jsonl"}, ""},       // flags after arguments are not moved before the completion flag
		{[]string{"run", "--", "prompts.jsonl"}, ""}, // after "--" urfave/cli would run the command
	} {
		if got := strings.Join(ask(tc.args...), " "); got != tc.want {
			t.Errorf("completing %v: %q, want %q", tc.args, got, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "never.db")); err == nil {
		t.Errorf("asking for completions opened the database")
	}
	t.Run("Bash", func(t *testing.T) {
		if _, err := exec.LookPath("bash"); err != nil {
			t.Skip("bash not installed")
		}
		// Load the script as a user would and complete a few lines.
		script := `source <(llmbatch completion bash)
c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _llmbatch_complete; echo "${COMPREPLY[*]}"; }
c llmbatch ex
c llmbatch run --max-a
c llmbatch run ""
`
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		if got, want := string(out), "export\n--max-attempts\n\n"; got != want {
			t.Errorf("bash completions %q, want %q", got, want)
		}
	})
}
