package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// quickDemo is the demo at test speed, into a database of its own.
func quickDemo(t *testing.T) demoOptions {
	o := defaultDemo
	o.DB = filepath.Join(t.TempDir(), "demo.db")
	o.Latency, o.Jitter, o.ChunkInterval, o.RetryDelay = 5*time.Millisecond, 10*time.Millisecond, time.Millisecond, 20*time.Millisecond
	o.LogInterval = 100 * time.Millisecond
	return o
}

// demoOut is what a demo printed.
type demoOut struct{ stdout, stderr string }

func runQuickDemo(t *testing.T, o demoOptions) (demoOut, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runDemo(context.Background(), o, &out, &errb)
	return demoOut{out.String(), errb.String()}, err
}

// The demo runs its job to the end through the run path, with the staged
// faults retried, says before and after that the answers are not from a
// model, and names the commands to try next, which work on its database.
func TestDemo(t *testing.T) {
	o := quickDemo(t)
	got, err := runQuickDemo(t, o)
	if err != nil {
		t.Fatalf("demo: %v\n%s%s", err, got.stdout, got.stderr)
	}
	intro, outro, ok := strings.Cut(got.stdout, "llmbatch demo: done.")
	if !ok || !strings.Contains(intro, "NOT from a model") || !strings.Contains(outro, "not from a model") {
		t.Errorf("the demo should say before and after that the answers are not from a model:\n%s", got.stdout)
	}
	flags := "--db " + shellQuote(o.DB) + " "
	for _, want := range []string{
		"llmbatch " + flags + "status demo ", "llmbatch " + flags + "export demo --format flat ",
		"llmbatch " + flags + "report demo -o report.html ", "llmbatch " + flags + "demo ", "Ctrl-C",
		"OPENAI_API_KEY=sk-... llmbatch run examples/chat.jsonl ",
	} {
		if !strings.Contains(outro, want) {
			t.Errorf("the commands to try next lack %q:\n%s", want, outro)
		}
	}
	for _, want := range []string{
		"llmbatch: job demo: imported 24 requests",
		"llmbatch: job demo: 429 rate_limited: Rate limit reached", "llmbatch: job demo: 500 server_error: ",
		"llmbatch: job demo: bad_response: stream ended", "llmbatch: job demo: 24 succeeded, 0 failed",
	} {
		if !strings.Contains(got.stderr, want) {
			t.Errorf("the run's messages lack %q:\n%s", want, got.stderr)
		}
	}
	// The suggested commands, on the demo's database.
	st := statusJSON(t, o.DB, "demo")
	if n := count(t, st, "succeeded"); n != 24 {
		t.Errorf("status: %d succeeded, want 24", n)
	}
	lines := exportJSONL(t, o.DB, "demo", "flat")
	if len(lines) != 24 || lines[0]["custom_id"] != "capital-fr" || !strings.HasPrefix(lines[0]["content"].(string), "echo: ") {
		t.Errorf("export: %d lines, first %v; want 24, capital-fr answered by the echo", len(lines), lines[0])
	}
	report := filepath.Join(t.TempDir(), "report.html")
	if res := runCLI(t, nil, "--db", o.DB, "report", "demo", "-o", report); res.Code != ExitOK {
		t.Errorf("report: exit %d\n%s", res.Code, res.Stderr)
	}
	// A demo that finished is not run again: the next is a new job.
	got, err = runQuickDemo(t, o)
	if err != nil || !strings.Contains(got.stderr, "llmbatch: job demo-2: 24 succeeded") {
		t.Errorf("second demo: %v\n%s", err, got.stderr)
	}
}

// The demo's job is the example job and a few more prompts; each staged
// fault is set on one of its prompts.
func TestDemoRequests(t *testing.T) {
	example, err := os.ReadFile("../examples/chat.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(demoRequests, example) {
		t.Errorf("demo.jsonl does not start with examples/chat.jsonl: copy it again")
	}
	prompts := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(demoRequests), []byte("\n")) {
		var r struct {
			Messages []struct{ Role, Content string }
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		prompts[r.Messages[len(r.Messages)-1].Content] = true
	}
	for p := range demoFaults {
		if !prompts[p] {
			t.Errorf("a fault is staged on %q, which no request of the demo asks", p)
		}
	}
}

// A demo stopped before its end is resumed by the next demo (the same
// job); a user's own job named demo is left alone.
func TestDemoJobName(t *testing.T) {
	ctx := context.Background()
	o := quickDemo(t)
	if name, err := demoJobName(ctx, o.DB); err != nil || name != "demo" {
		t.Fatalf("no database: %q, %v; want demo", name, err)
	}
	// A user's job named demo, unfinished.
	user := writeLines(t, t.TempDir(), "demo.jsonl", chatLines(2)...)
	if res := runCLI(t, nil, "--db", o.DB, "import", user); res.Code != ExitOK {
		t.Fatalf("import: %s", res.Stderr)
	}
	if name, err := demoJobName(ctx, o.DB); err != nil || name != "demo-2" {
		t.Fatalf("beside a user's job named demo: %q, %v; want demo-2", name, err)
	}
	// A demo job with requests left (as after Ctrl-C) is the one to go on
	// with; its name stays until it is finished.
	file, cleanup, err := writeDemoFile()
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if err := runImport(ctx, importOptions{DB: o.DB, Input: file, Job: "demo-2", SourceName: demoSource,
		Dataset: datasetOptions{Samples: 1}}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if name, err := demoJobName(ctx, o.DB); err != nil || name != "demo-2" {
		t.Errorf("with demo-2 unfinished: %q, %v; want demo-2", name, err)
	}
	if got, err := runQuickDemo(t, o); err != nil || !strings.Contains(got.stderr, "llmbatch: job demo-2: 24 succeeded") {
		t.Errorf("the demo did not finish demo-2: %v\n%s", err, got.stderr)
	}
	if name, err := demoJobName(ctx, o.DB); err != nil || name != "demo-3" {
		t.Errorf("with demo-2 finished: %q, %v; want demo-3", name, err)
	}
	st := statusJSON(t, o.DB, "demo")
	if n := count(t, st, "pending"); n != 2 {
		t.Errorf("the user's job demo has %d pending, want its 2 untouched", n)
	}
}

// The demo interrupted says how to resume it (the demo again, which starts
// its stand-in, not `run`, whose URL would be gone), and exits as a run
// does.
func TestDemoInterrupted(t *testing.T) {
	o := quickDemo(t)
	o.Latency = time.Second
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	var out, errb bytes.Buffer
	err := runDemo(ctx, o, &out, &errb)
	if exitCode(err) != ExitInterrupted || !strings.Contains(err.Error(), "run `llmbatch --db "+shellQuote(o.DB)+" demo` to continue") {
		t.Fatalf("err %v (exit %d); want an interruption that names the demo\n%s", err, exitCode(err), errb.String())
	}
	if !strings.Contains(out.String(), "stopped; nothing is lost") || strings.Contains(out.String(), "llmbatch demo: done") {
		t.Errorf("stdout:\n%s", out.String())
	}
	if name, nerr := demoJobName(context.Background(), o.DB); nerr != nil || name != "demo" {
		t.Errorf("after the interruption the next demo runs %q (%v), want demo", name, nerr)
	}
}

func TestProgramName(t *testing.T) {
	for _, tc := range []struct{ arg0, want string }{
		{"llmbatch", "llmbatch"},
		{"./llmbatch", "./llmbatch"},
		{"/tmp/go-build123/b001/exe/llmbatch", "go run ."},
		{"/opt/my tools/llmbatch", "'/opt/my tools/llmbatch'"},
		{"", "llmbatch"},
	} {
		if got := programName(tc.arg0); got != tc.want {
			t.Errorf("programName(%q) = %q, want %q", tc.arg0, got, tc.want)
		}
	}
}
