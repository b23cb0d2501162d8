package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// testKey is the API key the tests' fake server expects; tests search every
// file the CLI writes for it.
const testKey = "sk-test-7d1c0ffee0ddba11-secret"

// cli runs the command line in-process against a database in dir and
// returns the exit code and what it printed.
type cliResult struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, env map[string]string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := Main(context.Background(), append([]string{"llmbatch"}, args...), getenv, nil, &out, &errb)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

func keyEnv() map[string]string { return map[string]string{"OPENAI_API_KEY": testKey} }

// writeLines writes one JSON value per line to dir/name.
func writeLines(t *testing.T, dir, name string, lines ...any) string {
	t.Helper()
	var b strings.Builder
	for _, l := range lines {
		switch v := l.(type) {
		case string:
			b.WriteString(v)
		default:
			j, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(j)
		}
		b.WriteByte('\n')
	}
	return writeFile(t, dir, name, b.String())
}

// chatLine is a bare chat body whose prompt the fake server answers with
// "echo: prompt-i" and counts under the key "prompt-i".
func chatLine(i int) map[string]any {
	return map[string]any{"custom_id": fmt.Sprintf("req-%d", i), "model": "deepseek/deepseek-v3",
		"messages": []any{map[string]any{"role": "user", "content": fmt.Sprintf("prompt-%d", i)}}}
}

func chatLines(n int) []any {
	lines := make([]any, n)
	for i := range lines {
		lines[i] = chatLine(i)
	}
	return lines
}

// exportJSONL exports the job in the given format and decodes each line.
func exportJSONL(t *testing.T, db, job, format string, extra ...string) []map[string]any {
	t.Helper()
	res := runCLI(t, nil, append([]string{"--db", db, "export", "--format", format, job}, extra...)...)
	if res.code != 0 {
		t.Fatalf("export: exit %d: %s", res.code, res.stderr)
	}
	return decodeLines(t, res.stdout)
}

func decodeLines(t *testing.T, text string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// statusJSON returns `status --json` decoded.
func statusJSON(t *testing.T, db, job string) map[string]any {
	t.Helper()
	res := runCLI(t, nil, "--db", db, "status", "--json", job)
	if res.code != 0 {
		t.Fatalf("status: exit %d: %s", res.code, res.stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &m); err != nil {
		t.Fatalf("status json: %v\n%s", err, res.stdout)
	}
	return m
}

func count(t *testing.T, status map[string]any, state string) int {
	t.Helper()
	return int(status["counts"].(map[string]any)[state].(float64))
}

// settled returns the fake server's stats once no request is in flight:
// the server counts an answer just after the client has it.
func settled(t *testing.T, srv *fakeapi.Server) fakeapi.Stats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := srv.Stats()
		if s.InFlight == 0 || time.Now().After(deadline) {
			return s
		}
		time.Sleep(5 * time.Millisecond)
	}
}
