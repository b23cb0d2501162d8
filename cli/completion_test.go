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
			if res.Code != ExitOK {
				t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Stdout, w) {
					t.Errorf("%s script lacks %q:\n%s", tc.shell, w, res.Stdout)
				}
			}
			checkSyntax(t, tc.shell, res.Stdout)
		})
	}
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}} {
		if res := runCLI(t, nil, args...); res.Code != ExitError || !strings.Contains(res.Stderr, "bash, zsh or fish") {
			t.Errorf("%v: exit %d, stderr %q; want 1 naming the shells", args, res.Code, res.Stderr)
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
