package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

func TestParseArgs(t *testing.T) {
	app := newApp(func(string) string { return "" }, nil, io.Discard, io.Discard)
	tests := []struct{ in, want string }{
		{"llmbatch export JOB -o out.jsonl --errors e.jsonl", "llmbatch export -o out.jsonl --errors e.jsonl JOB"},
		{"llmbatch --db x.db export --format=flat JOB -o f", "llmbatch --db x.db export --format=flat -o f JOB"},
		{"llmbatch run p.jsonl --stream --concurrency 4", "llmbatch run --stream --concurrency 4 p.jsonl"},
		{"llmbatch status --json JOB", "llmbatch status --json JOB"},
		{"llmbatch run -- -weird.jsonl", "llmbatch run -- -weird.jsonl"},
		{"llmbatch run - --job stdin", "llmbatch run --job stdin -"},
		// Global flags after the command go before it.
		{"llmbatch status JOB --db PATH", "llmbatch --db PATH status JOB"},
		{"llmbatch export JOB --db x.db -o f", "llmbatch --db x.db export -o f JOB"},
		{"llmbatch jobs --db=x.db", "llmbatch --db=x.db jobs"},
		{"llmbatch --db a.db run p.jsonl --db b.db", "llmbatch --db a.db --db b.db run p.jsonl"},
		{"llmbatch run --job --db p.jsonl", "llmbatch run --job --db p.jsonl"}, // --db is --job's value
		// Help stays urfave/cli's.
		{"llmbatch run p.jsonl --stream --help", "llmbatch run --help"},
		{"llmbatch run --job --help p.jsonl", "llmbatch run --job --help p.jsonl"}, // a value, not a flag
		{"llmbatch help run", "llmbatch help run"},
		{"llmbatch -h", "llmbatch -h"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseArgs(app, strings.Fields(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(got, " "); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestArgsEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"status", "status", 0},
		{"staus", "status", 1}, {"concurency", "concurrency", 1}, {"stauts", "status", 1}, // a swap counts once
		{"kitten", "sitting", 3}, {"dp", "db", 1}, {"café", "cafe", 1},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestArgsClosest(t *testing.T) {
	names := []string{"run", "import", "status", "jobs", "export", "concurrency", "db", "max-attempts"}
	for in, want := range map[string]string{
		"staus": "status", "rnu": "run", "imprt": "import", "concurency": "concurrency", "concurrancy": "concurrency",
		"max-atempts": "max-attempts", "d": "db", "frobnicate": "", "xyz": "", "zz": "",
	} {
		if got := closest(in, names); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExportFlagsAfterJob(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
		if c.CustomKey == "prompt-1" {
			return fakeapi.Fault{Status: 400}
		}
		return fakeapi.Fault{}
	}})
	file := writeLines(t, dir, "late.jsonl", chatLines(3)...)
	db := filepath.Join(dir, "t.db")
	if res := runCLI(t, keyEnv(), runArgs(db, srv, file)...); res.Code != ExitSomeFailed {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	out, errs := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "errs.jsonl")
	res := runCLI(t, nil, "--db", db, "export", "late", "-o", out, "--errors", errs, "--format", "flat")
	if res.Code != 0 || res.Stdout != "" {
		t.Fatalf("export: exit %d, stdout %q\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for path, want := range map[string]int{out: 2, errs: 1} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(decodeLines(t, string(b))); got != want {
			t.Errorf("%s: %d lines, want %d", filepath.Base(path), got, want)
		}
	}
}
