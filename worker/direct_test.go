package worker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
)

// rawServer is an HTTP/1.1 server on loopback written by hand, so that a
// test controls every byte and every close: serve gets each request read
// from a connection and writes the answer; it reports false to close the
// connection without a word.
type rawServer struct {
	ln       net.Listener
	conns    atomic.Int64
	requests atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	open     []net.Conn // closed at the end, the client's kept ones too
	closed   bool
}

func startRawServer(t *testing.T, serve func(w *bufio.Writer, req *http.Request, n int64) bool) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.mu.Lock()
			s.open = append(s.open, conn)
			if s.closed {
				conn.Close()
			}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer conn.Close()
				br, bw := bufio.NewReader(conn), bufio.NewWriter(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if !serve(bw, req, s.requests.Add(1)) || bw.Flush() != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		s.closed = true
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() + "/v1" }

// completion is a plain answer with a Content-Length.
const completion = `{"id":"r","model":"m","choices":[{"message":{"content":"hi"},"finish_reason":"stop"}]}`

func writeCompletion(w *bufio.Writer, extra string) {
	fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s",
		extra, len(completion), completion)
}

// mustCall makes a call that must succeed with the answer completion.
func mustCall(t *testing.T, c *Client) {
	t.Helper()
	res, err := c.Call(context.Background(), chatRequest(testModel, "x"))
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if res.Content != "hi" {
		t.Fatalf("Call content %q, want %q", res.Content, "hi")
	}
}

func TestNewDirect(t *testing.T) {
	tests := []struct {
		base, key string
		want      bool
	}{
		{"http://127.0.0.1:8000/v1", testKey, true},
		{"http://localhost/v1", "", true},
		{"https://api.example/v1", testKey, false},
		{"http://user:pw@127.0.0.1:8000/v1", testKey, false},
		{"http://127.0.0.1:8000/v1?api-version=1", testKey, false},
		{"http://127.0.0.1:8000/v1", "sk-\r\nX-Injected: 1", false},
		{"http://[fe80::1%25eth0]:8000/v1", testKey, false},
	}
	for _, tt := range tests {
		if got := newDirect(tt.base, tt.key, 4) != nil; got != tt.want {
			t.Errorf("newDirect(%q, %q) direct = %v, want %v", tt.base, tt.key, got, tt.want)
		}
	}
	if c := newTestClient("http://127.0.0.1:8000/v1", ClientOptions{Transport: http.DefaultTransport}); c.direct != nil {
		t.Error("a client with a transport of its own calls without it")
	}
}

// What goes out: the request line, the headers net/http would send (but
// no Accept-Encoding: answers come uncompressed), and the body.
func TestDirectRequest(t *testing.T) {
	got := make(chan *http.Request, 2)
	s := startRawServer(t, func(w *bufio.Writer, req *http.Request, _ int64) bool {
		got <- req
		writeCompletion(w, "")
		return true
	})
	c := newTestClient(s.url(), ClientOptions{})
	if c.direct == nil {
		t.Fatal("a plain-HTTP loopback URL is not called directly")
	}
	mustCall(t, c)
	req := <-got
	want := map[string]string{"Content-Type": "application/json", "Accept": "application/json",
		"User-Agent": "llmbatch", "Authorization": "Bearer " + testKey, "Accept-Encoding": ""}
	for name, value := range want {
		if v := req.Header.Get(name); v != value {
			t.Errorf("header %s = %q, want %q", name, v, value)
		}
	}
	if req.Method != http.MethodPost || req.URL.Path != "/v1/chat/completions" || req.Host != s.ln.Addr().String() {
		t.Errorf("request %s %s to host %s, want POST /v1/chat/completions to %s", req.Method, req.URL.Path, req.Host, s.ln.Addr())
	}
	if n := req.ContentLength; n != int64(len(chatBody(testModel, "x"))) {
		t.Errorf("Content-Length %d, want %d", n, len(chatBody(testModel, "x")))
	}
}

// Calls one after another share one connection; an answer that says
// Connection: close, or one whose body is cut short, is the last on its
// connection.
func TestDirectKeepsConnections(t *testing.T) {
	tests := []struct {
		name      string
		extra     string
		wantConns int64
	}{
		{"KeepAlive", "", 1},
		{"ConnectionClose", "Connection: close\r\n", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startRawServer(t, func(w *bufio.Writer, _ *http.Request, _ int64) bool {
				writeCompletion(w, tt.extra)
				return true
			})
			c := newTestClient(s.url(), ClientOptions{})
			for range 5 {
				mustCall(t, c)
			}
			if got := s.conns.Load(); got != tt.wantConns {
				t.Errorf("5 calls opened %d connections, want %d", got, tt.wantConns)
			}
		})
	}
	t.Run("Chunked", func(t *testing.T) {
		s := startRawServer(t, func(w *bufio.Writer, _ *http.Request, _ int64) bool {
			half := len(completion) / 2
			fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n",
				half, completion[:half], len(completion)-half, completion[half:])
			return true
		})
		c := newTestClient(s.url(), ClientOptions{})
		for range 3 {
			mustCall(t, c)
		}
		if got := s.conns.Load(); got != 1 {
			t.Errorf("3 chunked answers took %d connections, want 1", got)
		}
	})
	t.Run("BytesAfterAnswer", func(t *testing.T) {
		s := startRawServer(t, func(w *bufio.Writer, _ *http.Request, _ int64) bool {
			writeCompletion(w, "")
			w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") // answers nothing asked
			return true
		})
		c := newTestClient(s.url(), ClientOptions{})
		for range 3 {
			mustCall(t, c)
		}
		if got := s.conns.Load(); got != 3 {
			t.Errorf("3 answers followed by more took %d connections, want 3", got)
		}
	})
	t.Run("BodyNotReadWhole", func(t *testing.T) {
		s := startRawServer(t, func(w *bufio.Writer, _ *http.Request, _ int64) bool {
			writeCompletion(w, "")
			return true
		})
		d := newDirect(s.url(), "", 2)
		for range 2 {
			resp, _, err := d.post(context.Background(), "/chat/completions", []byte(`{}`), false, time.Time{})
			if err != nil {
				t.Fatalf("post: %v", err)
			}
			_ = resp.Body.Close()
		}
		if got := s.conns.Load(); got != 2 {
			t.Errorf("2 answers left unread took %d connections, want 2", got)
		}
	})
}

// A server that closes a kept connection (its idle timeout) is met on the
// next call, which goes out again on a new connection, once: the request
// is answered, and sent once to a server that reads it.
func TestDirectServerClosedKeptConnection(t *testing.T) {
	s := startRawServer(t, func(w *bufio.Writer, _ *http.Request, _ int64) bool {
		writeCompletion(w, "") // no Connection: close, then a close
		_ = w.Flush()
		return false
	})
	c := newTestClient(s.url(), ClientOptions{})
	mustCall(t, c)
	time.Sleep(20 * time.Millisecond) // the close reaches the client
	mustCall(t, c)
	if conns, reqs := s.conns.Load(), s.requests.Load(); conns != 2 || reqs != 2 {
		t.Errorf("2 calls: %d connections, %d requests read; want 2 and 2", conns, reqs)
	}
	t.Run("NewConnectionClosed", func(t *testing.T) {
		// A new connection closed before an answer is no idle close: the
		// call fails, and is not sent again.
		s := startRawServer(t, func(*bufio.Writer, *http.Request, int64) bool { return false })
		c := newTestClient(s.url(), ClientOptions{})
		res, err := c.Call(context.Background(), chatRequest(testModel, "x"))
		if ce := mustCallError(t, res, err); ce.Class != jobs.ClassNetwork || ce.NoConnection {
			t.Errorf("Call = %+v, want a network error after the request was sent", ce)
		}
		if reqs := s.requests.Load(); reqs != 1 {
			t.Errorf("the request was read %d times, want 1", reqs)
		}
	})
}

// 1xx answers before the final one are skipped, as net/http skips them.
func TestDirectInformational(t *testing.T) {
	s := startRawServer(t, func(w *bufio.Writer, _ *http.Request, _ int64) bool {
		w.WriteString("HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n")
		writeCompletion(w, "")
		return true
	})
	mustCall(t, newTestClient(s.url(), ClientOptions{}))
}

// An answer whose headers pass the limit fails the call rather than
// growing without end.
func TestDirectHeaderLimit(t *testing.T) {
	s := startRawServer(t, func(w *bufio.Writer, _ *http.Request, _ int64) bool {
		w.WriteString("HTTP/1.1 200 OK\r\n")
		line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
		for range directMaxHeader/len(line) + 2 {
			w.WriteString(line)
		}
		writeCompletion(w, "")
		return true
	})
	c := newTestClient(s.url(), ClientOptions{})
	res, err := c.Call(context.Background(), chatRequest(testModel, "x"))
	ce := mustCallError(t, res, err)
	if ce.Class != jobs.ClassNetwork || !strings.Contains(ce.Message, "headers exceeded") {
		t.Errorf("Call = %+v, want a network error that says the headers exceeded the limit", ce)
	}
}

// A large body goes out whole, from where it is.
func TestDirectLargeBody(t *testing.T) {
	var got atomic.Int64
	s := startRawServer(t, func(w *bufio.Writer, req *http.Request, _ int64) bool {
		got.Store(req.ContentLength)
		writeCompletion(w, "")
		return true
	})
	c := newTestClient(s.url(), ClientOptions{})
	content := strings.Repeat("word ", 2*directCopyMost/5)
	req := chatRequest(testModel, content)
	if _, err := c.Call(context.Background(), req); err != nil {
		t.Fatalf("Call: %v", err)
	}
	if n := got.Load(); n != int64(len(req.Body)) {
		t.Errorf("server read a body of %d bytes, want %d", n, len(req.Body))
	}
}

// Many calls at once against the fake: each answered, on no more
// connections than calls at once.
func TestDirectConcurrent(t *testing.T) {
	const workers, calls = 8, 40
	s := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	c := newTestClient(s.URL(), ClientOptions{Conns: workers})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				res, err := c.Call(context.Background(), chatRequest(testModel, fmt.Sprintf("w%d-%d", w, i)))
				if err != nil || res.Content == "" {
					t.Errorf("Call: %+v, %v", res, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := len(c.direct.idle); got > workers {
		t.Errorf("%d connections kept, want at most %d", got, workers)
	}
	if st := s.Stats(); st.Served != workers*calls {
		t.Errorf("fake served %d, want %d", st.Served, workers*calls)
	}
}

// BenchmarkClientCall measures a call against the fake with no latency,
// the fake's share included: per call, its time and allocations.
func BenchmarkClientCall(b *testing.B) {
	for _, name := range []string{"Direct", "Transport"} {
		b.Run(name, func(b *testing.B) {
			s := fakeapi.Start(b, fakeapi.Config{Key: testKey})
			opts := ClientOptions{Conns: 8}
			if name == "Transport" {
				opts.Transport = http.DefaultTransport.(*http.Transport).Clone()
			}
			c := newTestClient(s.URL(), opts)
			req := chatRequest(testModel, "x")
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Call(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
