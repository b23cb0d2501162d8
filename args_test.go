package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

func TestFlagsFirst(t *testing.T) {
	app := newApp(func(string) string { return "" }, io.Discard, io.Discard)
	tests := []struct{ in, want string }{
		{"llmbatch export JOB -o out.jsonl --errors e.jsonl", "llmbatch export -o out.jsonl --errors e.jsonl JOB"},
		{"llmbatch --db x.db export --format=flat JOB -o f", "llmbatch --db x.db export --format=flat -o f JOB"},
		{"llmbatch run p.jsonl --stream --concurrency 4", "llmbatch run --stream --concurrency 4 p.jsonl"},
		{"llmbatch status --json JOB", "llmbatch status --json JOB"},
		{"llmbatch run -- -weird.jsonl", "llmbatch run -- -weird.jsonl"},
		{"llmbatch nosuch a -b", "llmbatch nosuch a -b"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := strings.Join(flagsFirst(app, strings.Fields(tt.in)), " "); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
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
	if res := runCLI(t, keyEnv(), runArgs(db, srv, file)...); res.code != exitSomeFailed {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	out, errs := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "errs.jsonl")
	res := runCLI(t, nil, "--db", db, "export", "late", "-o", out, "--errors", errs, "--format", "flat")
	if res.code != 0 || res.stdout != "" {
		t.Fatalf("export: exit %d, stdout %q\n%s", res.code, res.stdout, res.stderr)
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
