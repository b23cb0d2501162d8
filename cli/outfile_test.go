package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/clitest"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
)

// failedJob is a job of n requests, every other one failed with a 400 and
// a body of about 300 bytes, so that the error lines outgrow the export's
// buffers; the others succeeded. Its store is open.
func failedJob(t *testing.T, n int) (jobs.Store, jobs.Job) {
	t.Helper()
	_, st, clock := clitest.GoldenJob(t)
	var reqs []jobs.Request
	for i := 1; i <= n; i++ {
		reqs = append(reqs, jobs.Request{Line: i, CustomID: fmt.Sprintf("f%d", i), Endpoint: jobs.EndpointChat,
			Model: "deepseek/deepseek-v3", Body: []byte(fmt.Sprintf(`{"messages":[{"role":"user","content":"%d"}]}`, i))})
	}
	job, err := st.Import(context.Background(), jobs.Job{Name: "failing", Source: "failing.jsonl", Fingerprint: "fp2"}, &clitest.RequestList{Reqs: reqs})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"error":{"message":"` + strings.Repeat("max_tokens is too large; ", 10) + `"}}`
	for i, r := range clitest.Claim(t, st, job.ID, n) {
		if i%2 == 0 {
			clitest.Record(t, st, clitest.Success(r, clock.Now(), time.Second, 0, clitest.Usage(1, 2, 0, 0)))
			continue
		}
		o := clitest.Failure(r, clock.Now(), time.Second, 400, jobs.ClassInvalidRequest, "max_tokens is too large", jobs.StatusFailed)
		o.Failure.Body, o.Failure.RequestID = []byte(body), "req-"+r.CustomID
		clitest.Record(t, st, o)
	}
	return st, job
}

// dirFiles lists the names in dir.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestExportKeepsFileOnFailure: an export that fails, at the start or
// half-way, leaves the files it would replace as they were and no
// temporary file beside them; one that succeeds replaces them whole, mode
// 0600.
func TestExportKeepsFileOnFailure(t *testing.T) {
	st, job := failedJob(t, 400)
	format := exportFormat{output.FormatOpenAI, output.DefaultMergedFields}
	dir := t.TempDir()
	out, errs := filepath.Join(dir, "results.jsonl"), filepath.Join(dir, "errors.jsonl")
	const old = "the results of yesterday\n"
	for _, p := range []string{out, errs} {
		if err := os.WriteFile(p, []byte(old), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	intact := func(t *testing.T) {
		t.Helper()
		for _, p := range []string{out, errs} {
			if data, err := os.ReadFile(p); err != nil || string(data) != old {
				t.Errorf("%s = %q, %v; want it as it was", filepath.Base(p), data, err)
			}
		}
		if names := dirFiles(t, dir); len(names) != 2 {
			t.Errorf("files beside the outputs: %q; want only the two", names)
		}
	}
	var stdout, stderr bytes.Buffer
	t.Run("WriterFailsHalfWay", func(t *testing.T) {
		if _, err := os.Stat("/dev/full"); err != nil {
			t.Skip("no /dev/full to fail the writes")
		}
		// The error lines go to a device that is always full: its writes
		// fail once the buffer in front of it fills, half-way through the
		// records, after results were written to out's temporary file.
		err := export(context.Background(), st, job, format, out, "/dev/full", &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "no space left") {
			t.Errorf("export = %v, want the full device's error", err)
		}
		intact(t)
	})
	t.Run("Succeeds", func(t *testing.T) {
		if err := export(context.Background(), st, job, format, out, errs, &stdout, &stderr); err != nil {
			t.Fatal(err)
		}
		lines := exportedLines(t, errs)
		if len(lines) != 200 || lines[0]["error"] != nil || lines[0]["response"].(map[string]any)["request_id"] != "req-f2" {
			t.Errorf("%d error lines, the first %v; want 200 with the answer's request id and a null error", len(lines), lines[0])
		}
		if n := len(exportedLines(t, out)); n != 200 {
			t.Errorf("%d result lines, want 200", n)
		}
		for _, p := range []string{out, errs} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, %v; want 0600", filepath.Base(p), fi.Mode().Perm(), err)
			}
		}
		if names := dirFiles(t, dir); len(names) != 2 {
			t.Errorf("files beside the outputs: %q; want only the two", names)
		}
	})
	t.Run("StoreClosed", func(t *testing.T) {
		for _, p := range []string{out, errs} {
			if err := os.WriteFile(p, []byte(old), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
		if err := export(context.Background(), st, job, format, out, errs, &stdout, &stderr); err == nil {
			t.Error("export from a closed store succeeded")
		}
		intact(t)
	})
}

// exportedLines decodes a JSONL file.
func exportedLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeLines(t, string(data))
}

// TestReportOutput: report writes JOB.html without -o, stdout with -o -,
// refuses a directory, and leaves an older report as it was when it fails.
func TestReportOutput(t *testing.T) {
	db, st, _ := clitest.GoldenJob(t)
	dir := t.TempDir()
	t.Chdir(dir)
	res := runCLI(t, nil, "--db", db, "report", "golden")
	if res.Code != 0 || !strings.Contains(res.Stderr, "report written to golden.html") {
		t.Fatalf("report: exit %d\n%s", res.Code, res.Stderr)
	}
	if fi, err := os.Stat(filepath.Join(dir, "golden.html")); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Errorf("golden.html: %v, %v; want a report of mode 0600", fi, err)
	}
	if res := runCLI(t, nil, "--db", db, "report", "golden", "-o", "-"); res.Code != 0 || !strings.HasPrefix(res.Stdout, "<!DOCTYPE html>") {
		t.Errorf("report -o -: exit %d, stdout %.40q", res.Code, res.Stdout)
	}
	if res := runCLI(t, nil, "--db", db, "report", "golden", "-o", dir); res.Code != ExitError || !strings.Contains(res.Stderr, "is a directory") {
		t.Errorf("report -o DIR: exit %d, %q; want 1, is a directory", res.Code, res.Stderr)
	}
	const old = "<html>an older report</html>"
	path := filepath.Join(dir, "old.html")
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var stdout, stderr bytes.Buffer
	if err := runReport(context.Background(), st, reportOptions{Job: "golden", Output: path}, jobs.Prices{}, &stdout, &stderr); err == nil {
		t.Error("report from a closed store succeeded")
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != old {
		t.Errorf("old.html = %q, %v; want it as it was", data, err)
	}
	if got := reportFileName("team/eval"); got != "team_eval.html" {
		t.Errorf("reportFileName(team/eval) = %q", got)
	}
}
