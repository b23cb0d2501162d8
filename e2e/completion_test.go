package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletionAnswers asks the built binary, as the scripts do: urfave/cli
// reads the word being completed from the process's arguments.
func TestCompletionAnswers(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	ask := func(args ...string) []string {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--generate-bash-completion")...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LLMBATCH_DB="+filepath.Join(dir, "never.db"), "OPENAI_API_KEY="+testKey)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return strings.Fields(string(out))
	}
	got := strings.Join(ask(), " ")
	for _, name := range []string{"run", "import", "status", "jobs", "export", "retry", "cancel", "report", "completion"} {
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
