package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	"github.com/llmbatch/llmbatch/store"
)

// reportCharts are the ids of the charts a report of a job with streamed
// requests, two models and errors has.
var reportCharts = []string{"chart-throughput", "chart-latency", "chart-ttft", "chart-models", "chart-errors"}

// reportHostileID and reportHostileMessage must come out of the report escaped.
const (
	reportHostileID      = `bad-<b>&"quoted"</b>`
	reportHostileMessage = `<script>alert("x")</script> max_tokens & friends`
)

// reportFaults scripts the fake API for the report's job: latencies spread
// over a range, a 429 and 500s that succeed on retry, a request that always
// gets a 500 (fails after the attempts run out) and two that get a 400.
func reportFaults(c fakeapi.Call) fakeapi.Fault {
	var i int
	fmt.Sscanf(c.CustomKey, "prompt-%d", &i)
	delay := time.Duration(c.N%11) * 3 * time.Millisecond
	switch {
	case i == 3 || i == 17:
		return fakeapi.Fault{Status: 400, Body: `{"error":{"message":"` + strings.ReplaceAll(reportHostileMessage, `"`, `\"`) +
			`","type":"invalid_request_error","param":"max_tokens","code":null}}`}
	case i == 13:
		return fakeapi.Fault{Status: 500, Delay: delay}
	case (i == 1 || i == 21) && c.Attempt == 1:
		return fakeapi.Fault{Status: 429, Header: map[string]string{"retry-after-ms": "5"}}
	case i%7 == 2 && c.Attempt <= 2:
		return fakeapi.Fault{Status: 500, Delay: delay}
	}
	return fakeapi.Fault{Delay: delay}
}

// runReportJob runs a job of 40 requests on two models, a third of them
// streamed, with scripted faults, and returns the database.
func runReportJob(t *testing.T, dir string) string {
	t.Helper()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, ChunkInterval: time.Millisecond, Script: reportFaults})
	lines := make([]any, 40)
	for i := range lines {
		l := chatLine(i)
		if i%2 == 1 {
			l["model"] = "deepseek/deepseek-r1"
		}
		if i%3 == 0 {
			l["stream"] = true
		}
		if i == 3 {
			l["custom_id"] = reportHostileID
		}
		lines[i] = l
	}
	file := writeLines(t, dir, "nightly.jsonl", lines...)
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, keyEnv(), runArgs(db, srv, "--concurrency", "4", "--max-attempts", "3", file)...)
	if res.code != ExitSomeFailed {
		t.Fatalf("run: exit %d, want %d (some failed)\n%s", res.code, ExitSomeFailed, res.stderr)
	}
	return db
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	db := runReportJob(t, dir)
	prices := filepath.Join(dir, "prices.json")
	if err := os.WriteFile(prices, []byte(`{"currency": "EUR", "models": {"deepseek/deepseek-r1": {"input": 0.55, "output": 2.19, "cached": 0.14}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.html")
	res := runCLI(t, nil, "--db", db, "report", "nightly", "-o", out,
		"--price", "deepseek/deepseek-v3=0.27:1.10", "--prices", prices, "--currency", "USD")
	if res.code != 0 {
		t.Fatalf("report: exit %d\n%s", res.code, res.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(data)

	t.Run("SelfContained", func(t *testing.T) { checkSelfContained(t, out, page) })
	t.Run("Sections", func(t *testing.T) { checkSections(t, page) })
	t.Run("Escaped", func(t *testing.T) {
		for _, raw := range []string{reportHostileID, "<script>alert", "<b>&"} {
			if strings.Contains(page, raw) {
				t.Errorf("report holds %q unescaped", raw)
			}
		}
		for _, esc := range []string{"bad-&lt;b&gt;&amp;&#34;quoted&#34;&lt;/b&gt;", "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; max_tokens &amp; friends"} {
			if !strings.Contains(page, esc) {
				t.Errorf("report lacks the escaped text %q", esc)
			}
		}
		if strings.Contains(page, testKey) {
			t.Error("report holds the API key")
		}
	})
	t.Run("Costs", func(t *testing.T) {
		// Both models are priced (one by --price, one by the file), and
		// --currency overrides the file's label.
		if !regexp.MustCompile(`<div class="label">Cost</div><div class="value">\d+\.\d{4} USD</div>`).MatchString(page) {
			t.Errorf("cost card missing or not in USD:\n%s", textBetween(page, `id="totals"`, `</section>`))
		}
		if strings.Contains(page, "EUR") {
			t.Error("--currency did not override the prices file's currency")
		}
	})
	t.Run("Browser", func(t *testing.T) {
		dom := chromiumDOM(t, out)
		body := tagOf(dom, "body")
		for _, want := range []string{`data-charts-ok="true"`, `data-chart-errors=""`,
			`data-chart-count="` + strconv.Itoa(len(reportCharts)) + `"`} {
			if !strings.Contains(body, want) {
				t.Errorf("browser check: body lacks %s: %s", want, body)
			}
		}
		if html := tagOf(dom, "html"); !strings.Contains(html, `data-script-errors=""`) {
			t.Errorf("script errors in the browser: %s", html)
		}
		if shot := os.Getenv("LLMBATCH_REPORT_SCREENSHOT"); shot != "" {
			chromium(t, "--screenshot="+shot, "--window-size=1280,2400", "file://"+out)
		}
	})
	t.Run("BrowserCatchesBrokenCharts", func(t *testing.T) {
		// The self-check must fail a chart that claims more marks than it
		// draws, and must see a script error.
		broken := strings.Replace(page, `id="chart-latency" data-points="`, `id="chart-latency" data-points="999`, 1)
		broken = strings.Replace(broken, "</main>", "<script>undefinedFunction();</script></main>", 1)
		path := filepath.Join(dir, "broken.html")
		if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
			t.Fatal(err)
		}
		dom := chromiumDOM(t, path)
		body := tagOf(dom, "body")
		if !strings.Contains(body, `data-charts-ok="false"`) || !strings.Contains(body, "chart-latency:") {
			t.Errorf("broken chart not caught: %s", body)
		}
		if html := tagOf(dom, "html"); !strings.Contains(html, "undefinedFunction") {
			t.Errorf("script error not caught: %s", html)
		}
	})
}

// checkSelfContained asserts the file is private and fetches nothing: no
// URL at all, no external script, style sheet, image or font, and a
// Content-Security-Policy that forbids loading anything.
func checkSelfContained(t *testing.T, path, page string) {
	t.Helper()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("report mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	for _, bad := range []string{"http://", "https://", "<link", "<img", "<iframe", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("report holds %q: it must load nothing", bad)
		}
	}
	if m := regexp.MustCompile(`(?i)<script[^>]*\ssrc\s*=|\s(src|href)\s*=\s*["']?\s*(//|[a-z]+:)`).FindString(page); m != "" {
		t.Errorf("report references an external resource: %q", m)
	}
	if !strings.Contains(page, `<meta http-equiv="Content-Security-Policy" content="default-src 'none';`) {
		t.Error("report lacks its Content-Security-Policy")
	}
}

// checkSections asserts every chart is there with data, and every section.
func checkSections(t *testing.T, page string) {
	t.Helper()
	for _, id := range reportCharts {
		m := regexp.MustCompile(`<svg class="chart" id="` + id + `" data-points="(\d+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Errorf("no chart %s", id)
		} else if n, _ := strconv.Atoi(m[1]); n == 0 {
			t.Errorf("chart %s has no data points", id)
		}
	}
	for _, id := range []string{"summary", "states", "totals", "throughput", "latency", "ttft", "models", "errors", "slowest", "failed"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("no section %s", id)
		}
	}
	for _, want := range []string{"nightly", "deepseek/deepseek-r1", "deepseek/deepseek-v3", "rate_limited", "server_error", "invalid_request", "req-13"} {
		if !strings.Contains(page, want) {
			t.Errorf("report does not mention %q", want)
		}
	}
	if n := strings.Count(textBetween(page, `id="failed"`, "</section>"), "<tr><td"); n != 3 {
		t.Errorf("failed requests listed: %d, want 3", n)
	}
	if n := strings.Count(textBetween(page, `id="slowest"`, "</section>"), "<tr><td"); n != 20 {
		t.Errorf("slowest requests listed: %d, want 20", n)
	}
}

// tagOf returns the start tag of the page's html or body element in a
// dumped DOM (the body's is the first after the head).
func tagOf(dom, name string) string {
	if name == "body" {
		_, dom, _ = strings.Cut(dom, "</head>")
	}
	return regexp.MustCompile(`<` + name + `(\s[^>]*)?>`).FindString(dom)
}

func textBetween(s, from, to string) string {
	_, after, _ := strings.Cut(s, from)
	before, _, _ := strings.Cut(after, to)
	return before
}

// chromiumDOM loads the file in headless Chromium and returns the DOM
// after the page's scripts ran.
func chromiumDOM(t *testing.T, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return chromium(t, "--dump-dom", "file://"+abs)
}

// chromium runs headless Chromium with args, without network services or a
// profile, and returns its standard output. It skips the test when no
// Chromium is installed, unless $LLMBATCH_REQUIRE_CHROMIUM is set (.ci/run
// installs Debian's and sets it).
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" && os.Getenv("LLMBATCH_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium not installed, and LLMBATCH_REQUIRE_CHROMIUM is set (.ci/run installs it)")
	}
	if bin == "" {
		t.Skip("chromium not installed: skipping the browser check (apt-get install chromium; .ci/run does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
		"--mute-audio", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.WaitDelay = 2 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// failedJob is a job of n requests, every other one failed with a 400 and
// a body of about 300 bytes, so that the error lines outgrow the export's
// buffers; the others succeeded. Its store is open.
func failedJob(t *testing.T, n int) (*store.Store, jobs.Job) {
	t.Helper()
	_, st, clock := goldenJob(t)
	var reqs []jobs.Request
	for i := 1; i <= n; i++ {
		reqs = append(reqs, jobs.Request{Line: i, CustomID: fmt.Sprintf("f%d", i), Endpoint: jobs.EndpointChat,
			Model: "deepseek/deepseek-v3", Body: []byte(fmt.Sprintf(`{"messages":[{"role":"user","content":"%d"}]}`, i))})
	}
	job, err := st.Import(context.Background(), jobs.Job{Name: "failing", Source: "failing.jsonl", Fingerprint: "fp2"}, &requestList{reqs: reqs})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"error":{"message":"` + strings.Repeat("max_tokens is too large; ", 10) + `"}}`
	for i, r := range claim(t, st, job.ID, n) {
		if i%2 == 0 {
			record(t, st, success(r, clock.Now(), time.Second, 0, usage(1, 2, 0, 0)))
			continue
		}
		o := failure(r, clock.Now(), time.Second, 400, jobs.ClassInvalidRequest, "max_tokens is too large", jobs.StatusFailed)
		o.Failure.Body, o.Failure.RequestID = []byte(body), "req-"+r.CustomID
		record(t, st, o)
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
	db, st, _ := goldenJob(t)
	dir := t.TempDir()
	t.Chdir(dir)
	res := runCLI(t, nil, "--db", db, "report", "golden")
	if res.code != 0 || !strings.Contains(res.stderr, "report written to golden.html") {
		t.Fatalf("report: exit %d\n%s", res.code, res.stderr)
	}
	if fi, err := os.Stat(filepath.Join(dir, "golden.html")); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Errorf("golden.html: %v, %v; want a report of mode 0600", fi, err)
	}
	if res := runCLI(t, nil, "--db", db, "report", "golden", "-o", "-"); res.code != 0 || !strings.HasPrefix(res.stdout, "<!DOCTYPE html>") {
		t.Errorf("report -o -: exit %d, stdout %.40q", res.code, res.stdout)
	}
	if res := runCLI(t, nil, "--db", db, "report", "golden", "-o", dir); res.code != ExitError || !strings.Contains(res.stderr, "is a directory") {
		t.Errorf("report -o DIR: exit %d, %q; want 1, is a directory", res.code, res.stderr)
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
