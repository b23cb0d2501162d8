package e2e

// Hostile and broken servers, each with a defined outcome: the real binary
// runs against small servers written here (the fake API answers like a
// provider; these do not), and must neither hang nor crash nor let its
// memory grow with what the server sends.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// hostileCap is the --max-response-bytes of the hostile runs.
const hostileCap = 1 << 20

// hostileRun runs n chat requests ("prompt-0" …) against baseURL with two
// attempts each and returns the finished process and its database. The
// process must end with want within a minute.
func hostileRun(t *testing.T, baseURL string, n, want int, extra ...string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	file := writeLines(t, dir, "hostile.jsonl", chatLines(n)...)
	db := filepath.Join(dir, "hostile.db")
	args := append([]string{"--db", db, "run", "--base-url", baseURL, "--max-attempts", "2",
		"--retry-delay", "10ms", "--max-retry-delay", "20ms", "--timeout", "2s",
		"--max-response-bytes", strconv.Itoa(hostileCap)}, extra...)
	p := startBinary(t, dir, binEnv(dir), append(args, file)...)
	p.expect(want, time.Minute)
	if s := p.stderr.String(); strings.Contains(s, "panic:") || strings.Contains(s, "goroutine ") {
		t.Errorf("the run crashed:\n%s", s)
	}
	return p, db
}

// cliMu serialises the in-process commands of parallel subtests: urfave/cli
// sets its global help flag each time it parses.
var cliMu sync.Mutex

func hExport(t *testing.T, db, format string) []map[string]any {
	t.Helper()
	cliMu.Lock()
	defer cliMu.Unlock()
	return exportJSONL(t, db, "hostile", format)
}

func hStatus(t *testing.T, db string) map[string]any {
	t.Helper()
	cliMu.Lock()
	defer cliMu.Unlock()
	return statusJSON(t, db, "hostile")
}

// maxRSS is the peak resident memory of a finished child, in bytes.
func maxRSS(p *proc) int64 {
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return ru.Maxrss << 10 // kilobytes on Linux
}

// baselineRSS is the peak memory of a normal run of the same binary.
var baselineRSS struct {
	once sync.Once
	n    int64
}

func checkMemory(t *testing.T, p *proc, sent int64) {
	t.Helper()
	baselineRSS.once.Do(func() {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(completion("fine"))
		}))
		defer srv.Close()
		q, _ := hostileRun(t, srv.URL, 2, 0)
		baselineRSS.n = maxRSS(q)
	})
	// Loose: the race detector's shadow memory and the runtime's own slack
	// vary; what matters is that the peak does not follow what was sent.
	limit := baselineRSS.n + 64<<20
	got := maxRSS(p)
	t.Logf("peak memory %d MiB (a normal run: %d MiB); the server sent %d MiB", got>>20, baselineRSS.n>>20, sent>>20)
	if got > limit {
		t.Errorf("peak memory %d MiB, more than a normal run's %d MiB + 64 MiB", got>>20, baselineRSS.n>>20)
	}
}

// completion is a valid chat completion answering content.
func completion(content string) []byte {
	c, _ := json.Marshal(content)
	return []byte(`{"id":"chatcmpl-h","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,` +
		`"message":{"role":"assistant","content":` + string(c) + `},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}`)
}

// flatErrors returns the error of every line of the flat export, which
// must all be failures.
func flatErrors(t *testing.T, db string) []map[string]any {
	t.Helper()
	var errs []map[string]any
	for _, l := range hExport(t, db, "flat") {
		e, ok := l["error"].(map[string]any)
		if !ok || l["status"] != "failed" {
			t.Errorf("want a failed request, got %v", l)
			continue
		}
		errs = append(errs, e)
	}
	return errs
}

func checkFailedWith(t *testing.T, db string, n int, class, message string) {
	t.Helper()
	errs := flatErrors(t, db)
	if len(errs) != n {
		t.Errorf("%d failed requests, want %d", len(errs), n)
	}
	for _, e := range errs {
		if e["code"] != class || !strings.Contains(fmt.Sprint(e["message"]), message) {
			t.Errorf("error %v, want class %s with %q", e, class, message)
		}
	}
	if got := queryInt(t, db, `SELECT count(*) FROM requests WHERE attempts != 2`); class != "invalid_request" && got != 0 {
		t.Errorf("%d requests did not use both attempts", got)
	}
}

// counted counts the bytes a handler managed to send.
type counted struct{ n atomic.Int64 }

func (c *counted) write(w io.Writer, p []byte) error {
	n, err := w.Write(p)
	c.n.Add(int64(n))
	return err
}

func TestHostileServers(t *testing.T) {
	binary(t)
	t.Run("BodyLargerThanCap", testBodyLargerThanCap)
	t.Run("DeeplyNestedJSON", testDeeplyNestedJSON)
	t.Run("InvalidUTF8", testInvalidUTF8)
	t.Run("ContentLengthLies", testContentLengthLies)
	t.Run("EndlessStream", testEndlessStream)
	t.Run("RedirectToAnotherHost", testRedirectToAnotherHost)
	t.Run("NeverAnswers", testNeverAnswers)
	t.Run("EndlessHeaders", testEndlessHeaders)
}

// testBodyLargerThanCap sends 256 MiB where 1 MiB is allowed: as one JSON
// body with and without a Content-Length, and as a stream. Each attempt
// fails as bad_response, the runner stops reading at the cap (the server
// manages to send little more than that), and memory does not grow.
func testBodyLargerThanCap(t *testing.T) {
	const huge = 256 << 20
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	event := []byte(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"` +
		strings.Repeat("x", 4000) + `"}}]}` + "\n\n")
	for _, tc := range []struct {
		name, contentType string
		contentLength     bool
		body              func(w io.Writer, c *counted) error
		args              []string
	}{
		{"Chunked", "application/json", false, jsonFlood(chunk), nil},
		{"WithContentLength", "application/json", true, jsonFlood(chunk), nil},
		{"Stream", "text/event-stream", false, func(w io.Writer, c *counted) error {
			for c.n.Load() < huge {
				if err := c.write(w, event); err != nil {
					return err
				}
			}
			return nil
		}, []string{"--stream"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sent counted
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				if tc.contentLength {
					w.Header().Set("Content-Length", strconv.Itoa(huge))
				}
				_ = tc.body(w, &sent)
			}))
			defer srv.Close()
			p, db := hostileRun(t, srv.URL, 1, exitSomeFailed, tc.args...)
			checkFailedWith(t, db, 1, "bad_response", "too large")
			// Two attempts; socket buffers hold a few MiB more than was read.
			if got := sent.n.Load(); got > 2*(hostileCap+16<<20) {
				t.Errorf("the server sent %d MiB: the runner read far past the cap", got>>20)
			}
			checkMemory(t, p, sent.n.Load())
		})
	}
}

// jsonFlood writes a JSON object whose one string member never ends before
// 256 MiB.
func jsonFlood(chunk []byte) func(io.Writer, *counted) error {
	return func(w io.Writer, c *counted) error {
		if err := c.write(w, []byte(`{"pad":"`)); err != nil {
			return err
		}
		for c.n.Load() < 256<<20-int64(len(chunk)) {
			if err := c.write(w, chunk); err != nil {
				return err
			}
		}
		return nil
	}
}

// testDeeplyNestedJSON answers 200 with 100,000 nested arrays: unclosed,
// closed inside an otherwise valid completion, and inside a stream's data
// event. encoding/json refuses nesting past 10,000, so each attempt fails
// as bad_response, quickly and without a stack overflow.
func testDeeplyNestedJSON(t *testing.T) {
	const depth = 100000
	open, closed := strings.Repeat("[", depth), strings.Repeat("[", depth)+strings.Repeat("]", depth)
	valid := string(completion("x"))
	for _, tc := range []struct {
		name, contentType, body string
		args                    []string
	}{
		{"Unclosed", "application/json", open, nil},
		{"InsideACompletion", "application/json", valid[:len(valid)-1] + `,"extra":` + closed + `}`, nil},
		{"InsideAStream", "text/event-stream", "data: " + closed + "\n\ndata: [DONE]\n\n", []string{"--stream"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fixedAnswer(t, tc.contentType, tc.body)
			_, db := hostileRun(t, srv.URL, 2, exitSomeFailed, tc.args...)
			checkFailedWith(t, db, 2, "bad_response", "")
			for _, e := range flatErrors(t, db) {
				if m := fmt.Sprint(e["message"]); !strings.Contains(m, "depth") && !strings.Contains(m, "JSON") {
					t.Errorf("message %q does not say the JSON was refused", m)
				}
			}
		})
	}
}

// fixedAnswer is a server that answers every request with body.
func fixedAnswer(t *testing.T, contentType, body string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// testInvalidUTF8 answers with content holding bytes that are not UTF-8,
// plainly and streamed. The answer is recorded; the invalid bytes become
// U+FFFD, so that every line of both export formats is valid UTF-8 JSON.
func testInvalidUTF8(t *testing.T) {
	const bad = "caf\xe9 \xff\xfe end \xe2\x82"
	plain := bytes.Replace(completion("PLACEHOLDER"), []byte("PLACEHOLDER"), []byte(bad), 1)
	streamed := "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"" + bad + "\"}}]}\n\n" +
		"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n" +
		"data: [DONE]\n\n"
	for _, tc := range []struct {
		name, contentType, body string
		args                    []string
	}{
		{"Plain", "application/json", string(plain), nil},
		{"Stream", "text/event-stream", streamed, []string{"--stream"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fixedAnswer(t, tc.contentType, tc.body)
			_, db := hostileRun(t, srv.URL, 1, 0, tc.args...)
			var want string // what encoding/json makes of the bytes
			_ = json.Unmarshal([]byte(`"`+bad+`"`), &want)
			for _, format := range []string{"openai", "flat"} {
				cliMu.Lock()
				res := runCLI(t, nil, "--db", db, "export", "--format", format, "hostile")
				cliMu.Unlock()
				if res.Code != 0 {
					t.Fatalf("export: %+v", res)
				}
				if !utf8.ValidString(res.Stdout) {
					t.Errorf("%s export is not valid UTF-8: %q", format, res.Stdout)
				}
				if !strings.Contains(decodeLines(t, res.Stdout)[0]["custom_id"].(string), "req-0") {
					t.Errorf("%s export: %s", format, res.Stdout)
				}
			}
			flat := hExport(t, db, "flat")
			if got := flat[0]["content"]; got != want {
				t.Errorf("content %q, want %q", got, want)
			}
		})
	}
}

// rawServer accepts connections on loopback and hands each to handle; it
// closes them all when the test ends. Its URL ends in /v1.
func rawServer(t *testing.T, host string, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String() + "/v1"
}

// promptOf reads the last message's content of a chat request body.
func promptOf(body []byte) string {
	var b struct {
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	_ = json.Unmarshal(body, &b)
	if len(b.Messages) == 0 {
		return ""
	}
	return b.Messages[len(b.Messages)-1].Content
}

// testContentLengthLies answers each request's first attempt with a
// Content-Length longer or shorter than the body, on a connection kept
// alive, and the second attempt correctly. The lie fails the attempt
// (network error: the body ended early; bad_response: the body was cut),
// the bytes left over on the connection never become another request's
// answer, and every request ends with its own answer.
func testContentLengthLies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delta int // Content-Length minus the body's length
		class string
	}{
		{"Longer", 100, "network"},
		{"Shorter", -40, "bad_response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			seen := map[string]int{}
			url := rawServer(t, "127.0.0.1", func(c net.Conn) {
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(req.Body)
					prompt := promptOf(body)
					mu.Lock()
					seen[prompt]++
					first := seen[prompt] == 1
					mu.Unlock()
					answer := completion("echo: " + prompt)
					length := len(answer)
					if first {
						length += tc.delta
					}
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", length)
					if _, err := c.Write(answer); err != nil {
						return
					}
					if first && tc.delta > 0 {
						return // the promised bytes never come: close
					}
				}
			})
			const n = 6
			_, db := hostileRun(t, url, n, 0, "--concurrency", "1", "--max-attempts", "4")
			flat := hExport(t, db, "flat")
			for i, l := range flat {
				if want := fmt.Sprintf("echo: prompt-%d", i); l["content"] != want {
					t.Errorf("request %d recorded %q, want %q", i, l["content"], want)
				}
			}
			if len(flat) != n {
				t.Errorf("%d results, want %d", len(flat), n)
			}
			st := hStatus(t, db)
			classes := map[string]int{}
			for _, e := range st["errors"].([]any) {
				m := e.(map[string]any)
				classes[m["class"].(string)] = int(m["count"].(float64))
			}
			if classes[tc.class] == 0 {
				t.Errorf("no %s attempt recorded: %v", tc.class, st["errors"])
			}
			t.Logf("failed attempts by class: %v", classes)
		})
	}
}

// testEndlessStream streams content tokens every 20 ms and never ends the
// stream: the tokens keep the stall timer from firing, so --timeout (2s)
// must end each attempt, and the runner must hang up.
func testEndlessStream(t *testing.T) {
	t.Parallel()
	var open atomic.Int64
	var sent counted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		open.Add(1)
		defer open.Add(-1)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		ev := []byte(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"more "}}]}` + "\n\n")
		for {
			if sent.write(w, ev) != nil || rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	p, db := hostileRun(t, srv.URL, 2, exitSomeFailed, "--stream")
	checkFailedWith(t, db, 2, "timeout", "2s")
	if d := time.Since(p.started); d > 30*time.Second {
		t.Errorf("took %s for two attempts of 2s each", d)
	}
	waitUntil(t, 10*time.Second, "the server's handlers to see the client go", func() bool { return open.Load() == 0 })
	checkMemory(t, p, sent.n.Load())
}

// testRedirectToAnotherHost answers with each redirect status, pointing at
// another server (on 127.0.0.2 where the system has it). The redirect is
// not followed, so the other host never sees a request, let alone the key;
// the request fails for good with the status and the Location named.
func testRedirectToAnotherHost(t *testing.T) {
	t.Parallel()
	var other atomic.Int64
	otherHost := "127.0.0.2"
	if ln, err := net.Listen("tcp", otherHost+":0"); err != nil {
		otherHost = "127.0.0.1"
	} else {
		ln.Close()
	}
	elsewhere := rawServer(t, otherHost, func(c net.Conn) {
		other.Add(1)
		_, _ = io.Copy(io.Discard, c)
	})
	codes := []int{301, 302, 303, 307, 308}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var i int
		fmt.Sscanf(promptOf(body), "prompt-%d", &i)
		w.Header().Set("Location", elsewhere+"/chat/completions?from=redirect")
		w.WriteHeader(codes[i%len(codes)])
	}))
	defer srv.Close()
	p, db := hostileRun(t, srv.URL, len(codes), exitSomeFailed)
	flat := hExport(t, db, "flat")
	for i, l := range flat {
		e, _ := l["error"].(map[string]any)
		if e == nil || e["code"] != "invalid_request" || e["status_code"] != float64(codes[i]) ||
			!strings.Contains(fmt.Sprint(e["message"]), "not followed") || !strings.Contains(fmt.Sprint(e["message"]), otherHost) {
			t.Errorf("redirect %d: %v", codes[i], l)
		}
	}
	if n := other.Load(); n != 0 {
		t.Errorf("the other host got %d connections", n)
	}
	checkNoKey(t, "stderr", []byte(p.stderr.String()))
	checkDirNoKey(t, filepath.Dir(db))
}

// testNeverAnswers accepts connections and then says nothing, or sends
// the headers and then nothing of the body: --timeout ends every attempt.
func testNeverAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		say  string
	}{
		{"Silent", ""},
		{"HeadersOnly", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id\":"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := rawServer(t, "127.0.0.1", func(c net.Conn) {
				if tc.say != "" {
					if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
						return
					}
					_, _ = io.WriteString(c, tc.say)
				}
				_, _ = io.Copy(io.Discard, c) // until the client hangs up
			})
			p, db := hostileRun(t, url, 2, exitSomeFailed)
			checkFailedWith(t, db, 2, "timeout", "2s")
			if d := time.Since(p.started); d > 30*time.Second {
				t.Errorf("took %s for two attempts of 2s each", d)
			}
		})
	}
}

// testEndlessHeaders sends a status line and then header lines forever:
// the HTTP client's header limit (or --timeout) ends the attempt, and the
// headers are not kept in memory.
func testEndlessHeaders(t *testing.T) {
	t.Parallel()
	var sent counted
	line := []byte("X-Pad: " + strings.Repeat("a", 1000) + "\r\n")
	url := rawServer(t, "127.0.0.1", func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		if sent.write(c, []byte("HTTP/1.1 200 OK\r\n")) != nil {
			return
		}
		for sent.write(c, line) == nil {
		}
	})
	p, db := hostileRun(t, url, 1, exitSomeFailed)
	for _, e := range flatErrors(t, db) {
		if e["code"] != "network" && e["code"] != "timeout" {
			t.Errorf("error %v, want network or timeout", e)
		}
	}
	checkMemory(t, p, sent.n.Load())
}

// TestTransportSecurity checks what keeps the key off the wire: a plain
// http:// base URL to another host, or one with credentials in it, is
// refused before anything is sent, and TLS certificates are always
// verified (a self-signed server never gets past the handshake, so it
// never sees a request or the key).
func TestTransportSecurity(t *testing.T) {
	dir := t.TempDir()
	file := writeLines(t, dir, "tls.jsonl", chatLines(2)...)
	db := filepath.Join(dir, "tls.db")
	for _, tc := range []struct{ url, want string }{
		{"http://api.example.com/v1", "plain HTTP to another host"},
		{"http://10.0.0.1:8080/v1", "plain HTTP to another host"},
		{"http://user:secret@127.0.0.1:1/v1", "must not contain credentials"},
		{"ftp://127.0.0.1/v1", "not an http(s) URL"},
	} {
		start := time.Now()
		cliMu.Lock()
		res := runCLI(t, keyEnv(), "--db", db, "run", "--base-url", tc.url, file)
		cliMu.Unlock()
		if res.Code != exitError || !strings.Contains(res.Stderr, tc.want) {
			t.Errorf("--base-url %s: exit %d, want 1 with %q:\n%s", tc.url, res.Code, tc.want, res.Stderr)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("--base-url %s: refused after %s: it tried the network", tc.url, d)
		}
		checkNoKey(t, "stderr", []byte(res.Stderr))
	}

	binary(t)
	var handled atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		_, _ = w.Write(completion("should never be read"))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	// A refused certificate on an endpoint never reached is a wrong URL
	// (or a missing CA): the run stops at the first attempt with exit 1,
	// naming the URL, and the request stays pending with no attempt used.
	p, hdb := hostileRun(t, srv.URL, 1, exitError)
	if msg := p.stderr.String(); !strings.Contains(msg, "no answer from "+srv.URL+"/chat/completions: the server's TLS certificate was refused") {
		t.Errorf("the message does not name the URL and the refused certificate:\n%s", msg)
	}
	if got := queryInt(t, hdb, `SELECT count(*) FROM attempts WHERE error_class = 'tls' AND message LIKE '%certificate%'`); got != 1 {
		t.Errorf("%d tls attempts, want 1", got)
	}
	if got := queryInt(t, hdb, `SELECT count(*) FROM requests WHERE status = 'pending' AND attempts = 0`); got != 1 {
		t.Errorf("%d pending requests with no attempt used, want 1", got)
	}
	if n := handled.Load(); n != 0 {
		t.Errorf("the self-signed server handled %d requests", n)
	}
	checkNoKey(t, "stderr", []byte(p.stderr.String()))
}
