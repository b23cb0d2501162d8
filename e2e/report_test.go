package e2e

import (
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
	if res.Code != exitSomeFailed {
		t.Fatalf("run: exit %d, want %d (some failed)\n%s", res.Code, exitSomeFailed, res.Stderr)
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
	if res.Code != 0 {
		t.Fatalf("report: exit %d\n%s", res.Code, res.Stderr)
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
