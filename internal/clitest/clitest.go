// Package clitest is test support shared by the tests of the command line
// (package cli) and of the whole binary (e2e): running the command line
// in-process, writing input files, reading status and exports back. It
// does not import the command line itself: the tests pass its Main in, so
// that cli's own tests can use it too.
package clitest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// Key is the API key the tests' fake server expects; tests search every
// file the command line writes for it.
const Key = "sk-test-7d1c0ffee0ddba11-secret"

// KeyEnv is an environment with Key as OPENAI_API_KEY.
func KeyEnv() map[string]string { return map[string]string{"OPENAI_API_KEY": Key} }

// MainFunc is cli.Main.
type MainFunc func(ctx context.Context, args []string, env func(string) string, stdin io.Reader, stdout, stderr io.Writer) int

// Result is what a command printed, and its exit code.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// CLI runs the command line in-process.
type CLI struct{ Main MainFunc }

// Run runs llmbatch args with the environment env.
func (c CLI) Run(t *testing.T, env map[string]string, args ...string) Result {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := c.Main(context.Background(), append([]string{"llmbatch"}, args...), getenv, nil, &out, &errb)
	return Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
}

// Must runs llmbatch args, fails the test unless it exits 0, and returns
// what it printed on stdout.
func (c CLI) Must(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	res := c.Run(t, env, args...)
	if res.Code != 0 {
		t.Fatalf("llmbatch %s: exit %d\n%s", strings.Join(args, " "), res.Code, res.Stderr)
	}
	return res.Stdout
}

// ExportJSONL exports the job in the given format and decodes each line.
func (c CLI) ExportJSONL(t *testing.T, db, job, format string, extra ...string) []map[string]any {
	t.Helper()
	out := c.Must(t, nil, append([]string{"--db", db, "export", "--format", format, job}, extra...)...)
	return DecodeLines(t, out)
}

// StatusJSON returns `status --json` of the job, decoded.
func (c CLI) StatusJSON(t *testing.T, db, job string) map[string]any {
	t.Helper()
	out := c.Must(t, nil, "--db", db, "status", "--json", job)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	return m
}

// Count is the count of requests in state of a decoded status.
func Count(t *testing.T, status map[string]any, state string) int {
	t.Helper()
	return int(status["counts"].(map[string]any)[state].(float64))
}

// DecodeLines decodes one JSON object per line.
func DecodeLines(t *testing.T, text string) []map[string]any {
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

// WriteFile writes content to dir/name (mode 0600) and returns its path.
func WriteFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteLines writes one JSON value per line to dir/name; a string is
// written as it is.
func WriteLines(t *testing.T, dir, name string, lines ...any) string {
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
	return WriteFile(t, dir, name, b.String())
}

// ChatLine is a bare chat body whose prompt the fake server answers with
// "echo: prompt-i" and counts under the key "prompt-i".
func ChatLine(i int) map[string]any {
	return map[string]any{"custom_id": fmt.Sprintf("req-%d", i), "model": "deepseek/deepseek-v3",
		"messages": []any{map[string]any{"role": "user", "content": fmt.Sprintf("prompt-%d", i)}}}
}

// ChatLines are ChatLine 0 to n-1.
func ChatLines(n int) []any {
	lines := make([]any, n)
	for i := range lines {
		lines[i] = ChatLine(i)
	}
	return lines
}

// Settled returns the fake server's stats once no request is in flight:
// the server counts an answer just after the client has it.
func Settled(t *testing.T, srv *fakeapi.Server) fakeapi.Stats {
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

// WaitUntil polls cond until it holds, failing the test after timeout.
func WaitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
