package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// dryRunFile has two models on two endpoints. Estimated prompt tokens are
// the JSON text of messages or prompt at four bytes a token, rounded up:
// [{"role":"user","content":"abcd"}] is 34 bytes, 9 tokens; "12345678"
// is 10 bytes, 3 tokens. Worst-case completions are max_tokens × n, else
// 1024: m-a 100 + 10×3 = 130, m-b 1024 + 50 = 1074.
var dryRunFile = []any{
	`{"custom_id":"a1","model":"m-a","messages":[{"role":"user","content":"abcd"}],"max_tokens":100}`,
	`{"custom_id":"a2","model":"m-a","messages":[{"role":"user","content":"abcd"}],"max_tokens":10,"n":3}`,
	`{"custom_id":"b1","url":"/v1/completions","body":{"model":"m-b","prompt":"12345678"}}`,
	`{"custom_id":"b2","url":"/v1/completions","body":{"model":"m-b","prompt":"12345678","max_tokens":50}}`,
}

func TestDryRun(t *testing.T) {
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	dir := t.TempDir()
	in := writeLines(t, dir, "plan.jsonl", dryRunFile...)
	db := filepath.Join(dir, "dry.db")
	env := keyEnv()
	env["OPENAI_BASE_URL"] = srv.URL()

	t.Run("Run", func(t *testing.T) {
		res := runCLI(t, env, "--db", db, "run", "--dry-run", "--rpm", "2", "--tpm", "600", "--concurrency", "4",
			"--price", "m-a=1000:2000", "--currency", "USD", in)
		if res.Code != 0 {
			t.Fatalf("exit %d: %s", res.Code, res.Stderr)
		}
		// m-a: (18×1000 + 130×2000)/1e6 = 0.278; m-b has no price.
		// Duration: max(4/2, (24+1204)/600) minutes = 2.0467 min = 2m3s.
		for _, want := range [][]string{
			{"/chat/completions", "m-a", "2", "18", "130", "0.2780 USD"},
			{"/completions", "m-b", "2", "6", "1074", "unknown"},
			{"total", "4", "24", "1204", "0.2780 USD + unknown"},
		} {
			if !hasRow(res.Stdout, want) {
				t.Errorf("no row %q in:\n%s", want, res.Stdout)
			}
		}
		if want := "expected duration: at least 2m3s (1228 tokens (worst case) / --tpm 600"; !strings.Contains(res.Stdout, want) {
			t.Errorf("want %q in:\n%s", want, res.Stdout)
		}
	})
	t.Run("RunNoLimits", func(t *testing.T) {
		res := runCLI(t, env, "--db", db, "run", "--dry-run", in)
		if res.Code != 0 || !strings.Contains(res.Stdout, "expected duration: unknown without --rpm/--tpm") {
			t.Errorf("exit %d, stdout:\n%s", res.Code, res.Stdout)
		}
	})
	t.Run("OneRequest", func(t *testing.T) {
		one := writeLines(t, dir, "one.jsonl", dryRunFile[0])
		for flag, want := range map[string]string{"--rpm": "(1 request / --rpm 60;", "--tpm": "(109 tokens (worst case) / --tpm 60;"} {
			res := runCLI(t, env, "--db", db, "run", "--dry-run", flag, "60", one)
			if res.Code != 0 || !strings.Contains(res.Stdout, want) {
				t.Errorf("%s: exit %d, want %q in:\n%s", flag, res.Code, want, res.Stdout)
			}
		}
	})
	t.Run("Import", func(t *testing.T) {
		res := runCLI(t, nil, "--db", db, "import", "--dry-run", "--price", "m-b=1:1", in)
		if res.Code != 0 || !hasRow(res.Stdout, []string{"/completions", "m-b", "2", "6", "1074", "0.0011"}) {
			t.Errorf("exit %d, stdout:\n%s", res.Code, res.Stdout)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		bad := writeLines(t, dir, "bad.jsonl", dryRunFile[0], dryRunFile[0], `{"custom_id":"c"}`)
		res := runCLI(t, env, "--db", db, "run", "--dry-run", bad)
		if res.Code != 1 || !strings.Contains(res.Stderr, "bad.jsonl:2: duplicate custom_id") || !strings.Contains(res.Stderr, "bad.jsonl:3:") {
			t.Errorf("exit %d, stderr:\n%s", res.Code, res.Stderr)
		}
	})
	if n := srv.Stats().Calls; n != 0 {
		t.Errorf("the fake API got %d requests, want 0", n)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("database %s: want none created, stat: %v", db, err)
	}
}

// hasRow reports whether a line of text has exactly the fields want.
func hasRow(text string, want []string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.Join(strings.Fields(line), " ") == strings.Join(want, " ") {
			return true
		}
	}
	return false
}
