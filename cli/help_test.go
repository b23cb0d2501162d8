package cli

import (
	"io"
	"strings"
	"testing"
)

// TestHelpExamples fails for a command whose --help shows no example of
// itself.
func TestHelpExamples(t *testing.T) {
	app := newApp(func(string) string { return "" }, nil, io.Discard, io.Discard)
	if !strings.Contains(app.Description, "Example:\n   llmbatch ") && !strings.Contains(app.Description, "Example:\n   export ") {
		t.Errorf("the app's description has no example:\n%s", app.Description)
	}
	if res := runCLI(t, nil, "--help"); !strings.Contains(res.Stdout, "Example:") {
		t.Errorf("llmbatch --help shows no example:\n%s", res.Stdout)
	}
	if len(app.Commands) < len(appCommands) {
		t.Fatalf("%d commands, want at least %d", len(app.Commands), len(appCommands))
	}
	for _, cmd := range app.Commands {
		t.Run(cmd.Name, func(t *testing.T) {
			if !strings.HasPrefix(cmd.Description, "Example:\n") || !strings.Contains(cmd.Description, "llmbatch "+cmd.Name) &&
				!strings.Contains(cmd.Description, "llmbatch --db ") {
				t.Errorf("description has no example of the command:\n%s", cmd.Description)
			}
			res := runCLI(t, nil, cmd.Name, "--help")
			if res.Code != ExitOK || !strings.Contains(res.Stdout, "Example:") || !strings.Contains(res.Stdout, cmd.Usage) {
				t.Errorf("%s --help: exit %d, no example or usage:\n%s", cmd.Name, res.Code, res.Stdout)
			}
		})
	}
}

// TestHelpEnvironment: --help names the environment variables read.
func TestHelpEnvironment(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"OPENAI_API_KEY", "OPENAI_BASE_URL", "LLMBATCH_DB", "[$LLMBATCH_DB]", "NO_COLOR", "llmbatch completion bash"}},
		{[]string{"run", "--help"}, []string{"$OPENAI_API_KEY", "$OPENAI_BASE_URL"}},
	} {
		res := runCLI(t, nil, tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(res.Stdout, w) {
				t.Errorf("%v lacks %q:\n%s", tc.args, w, res.Stdout)
			}
		}
	}
}
