package fakeapi

import (
	"context"
	"hash/maphash"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxBody bounds the request bodies the fake reads.
const maxBody = 64 << 20

// Server is a running fake API. Its methods are safe for concurrent use.
type Server struct {
	ts        *httptest.Server
	cfg       atomic.Pointer[Config]
	seq       atomic.Int64 // call numbers; never reset, so ids stay unique
	stats     counters
	quit      chan struct{} // closed by Close: ends every wait and stream
	closeOnce sync.Once
	hashSeed  maphash.Seed

	api batchAPI // the files and batches

	mu       sync.Mutex // guards bodies and attempts
	bodies   [][]byte
	attempts map[uint64]int

	// outMu guards the outage Down starts: the address to listen on
	// again, and the timer that ends it.
	outMu    sync.Mutex
	down     bool
	addr     string
	outTimer *time.Timer
}

// New starts a Server on 127.0.0.1 on a free port.
func New(cfg Config) *Server {
	s := &Server{quit: make(chan struct{}), hashSeed: maphash.MakeSeed()}
	s.SetConfig(cfg)
	s.ts = httptest.NewUnstartedServer(s)
	// Resets and cut streams are on purpose; keep the server quiet.
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.ts.Start()
	return s
}

// URL is the base URL of the API, ending in "/v1": requests go to
// URL()+"/chat/completions", URL()+"/completions" and URL()+"/embeddings",
// and to the Batch API at URL()+"/files" and URL()+"/batches".
func (s *Server) URL() string { return s.ts.URL + "/v1" }

// Close stops the server: it ends every pending wait and stream, then waits
// for the handlers to return. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.outMu.Lock()
		close(s.quit)
		if s.outTimer != nil {
			s.outTimer.Stop()
		}
		s.outMu.Unlock()
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
}

// SetConfig replaces the configuration for the requests that start after it.
func (s *Server) SetConfig(cfg Config) {
	if cfg.ReasoningModels == nil {
		cfg.ReasoningModels = []string{"r1"}
	}
	s.cfg.Store(&cfg)
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// Bodies returns the raw request bodies received, in arrival order, while
// Config.RecordBodies was set. The bodies must not be modified.
func (s *Server) Bodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

// Reset zeroes the counters, the recorded bodies and the attempt counts seen
// by Script. Call numbers (Call.N, ids) keep increasing, and the files and
// batches stay, so a client can re-attach to them. Requests in flight
// during Reset may be counted on either side of it.
func (s *Server) Reset() {
	s.stats.reset()
	s.mu.Lock()
	s.bodies, s.attempts = nil, nil
	s.mu.Unlock()
}

// ServeHTTP answers one request; the Server is an http.Handler, so it can
// also be mounted on another server.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.seq.Add(1)
	s.stats.begin()
	defer s.stats.end()
	cfg := s.cfg.Load()
	w.Header().Set("X-Request-Id", "req-"+strconv.FormatInt(n, 10))

	if rt, ok := batchRoute(r.URL.Path); ok {
		s.serveBatchAPI(w, r, cfg, rt)
		return
	}
	ep, ok := route(r.URL.Path)
	if !ok {
		s.writeError(w, notFound(r.URL.Path))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.writeError(w, methodNotAllowed(r.Method))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.writeError(w, badRequest("", "could not read the request body"))
		return
	}
	s.record(cfg, body)
	if !s.wait(r.Context(), cfg.Latency) {
		return
	}
	if !s.authorized(w, r, cfg) {
		return
	}
	req, apiErr := parseRequest(ep, body)
	if apiErr != nil {
		s.writeError(w, apiErr)
		return
	}
	s.respond(w, r, cfg, n, req, s.decide(cfg, n, r.URL.Path, body, req))
}

func (s *Server) decide(cfg *Config, n int64, path string, body []byte, req *request) Fault {
	if cfg.Script != nil {
		c := Call{N: n, Path: path, Body: body, CustomKey: req.key, Attempt: s.attempt(body), Stream: req.Stream, Model: req.Model}
		if f := cfg.Script(c); !f.isZero() {
			return f
		}
	}
	return cfg.Faults.pick(cfg.Seed, n, req.Stream)
}

func (s *Server) respond(w http.ResponseWriter, r *http.Request, cfg *Config, n int64, req *request, f Fault) {
	for k, v := range f.Header {
		w.Header().Set(k, v)
	}
	if !s.wait(r.Context(), f.Delay) {
		return
	}
	switch {
	case f.Reset:
		s.reset(w)
		return
	case f.Status != 0 && (f.Status < 200 || f.Status > 299 || f.Body != ""):
		s.writeFault(w, f)
		return
	case f.KeepAliveOnly && !req.Stream:
		s.wait(r.Context(), time.Duration(1<<63-1))
		return
	}
	if req.emb != nil {
		s.plain(w, req.key, req.emb.body(cfg.FloatUsage), req.emb.served(), f)
		return
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	words := 0
	if req.Stream {
		words = cfg.StreamWords
	}
	rep := newLongReply(req, n, now().Unix(), isReasoning(cfg, req.Model), words).styled(cfg)
	if req.Stream {
		s.stream(w, r, cfg, req, rep, f)
		return
	}
	s.plain(w, req.key, rep.body(), rep.served(), f)
}

func isReasoning(cfg *Config, model string) bool {
	for _, m := range cfg.ReasoningModels {
		if m != "" && strings.Contains(model, m) {
			return true
		}
	}
	return false
}

// plain writes a non-streamed answer, whole or damaged as f says; a whole
// one is counted as served under key with usage u.
func (s *Server) plain(w http.ResponseWriter, key string, body []byte, u Usage, f Fault) {
	status := http.StatusOK
	if f.Status != 0 {
		status = f.Status
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	switch {
	case f.BadJSON:
		body = body[:len(body)/2]
		h.Set("Content-Length", strconv.Itoa(len(body)))
		s.writeHead(w, status)
		s.stats.malformed.Add(1)
		_, _ = w.Write(body)
	case f.CutAfterChunks > 0:
		h.Set("Content-Length", strconv.Itoa(len(body)))
		s.writeHead(w, status)
		_, _ = w.Write(body[:len(body)/2])
		s.cut(w)
	default:
		h.Set("Content-Length", strconv.Itoa(len(body)))
		s.writeHead(w, status)
		if _, err := w.Write(body); err == nil {
			s.stats.serve(key, u)
		}
	}
}

func (s *Server) writeHead(w http.ResponseWriter, status int) {
	w.WriteHeader(status)
	s.stats.wrote(status)
}

func (s *Server) writeError(w http.ResponseWriter, e *apiError) {
	s.writeBody(w, e.status, e.body())
}

func (s *Server) writeFault(w http.ResponseWriter, f Fault) {
	if f.Body != "" {
		s.writeBody(w, f.Status, []byte(f.Body))
		return
	}
	s.writeError(w, defaultError(f.Status))
}

func (s *Server) writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	s.writeHead(w, status)
	_, _ = w.Write(body)
}

// wait sleeps for d before anything is written, and reports false
// (counting the call as canceled) if the client went away or the server
// closed first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if s.sleep(ctx, d) {
		return true
	}
	s.stats.canceled.Add(1)
	return false
}

// reset closes the connection with SO_LINGER 0, so the client sees a
// connection reset rather than a clean end of file.
func (s *Server) reset(w http.ResponseWriter) {
	s.stats.resets.Add(1)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // no hijacking (HTTP/2): abort the stream
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// cut flushes what was written and closes the connection, leaving the
// response unfinished (no final chunk, or fewer bytes than Content-Length).
func (s *Server) cut(w http.ResponseWriter) {
	s.stats.cut.Add(1)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

func (s *Server) record(cfg *Config, body []byte) {
	if !cfg.RecordBodies {
		return
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	s.mu.Unlock()
}

// attempt counts the calls with this exact body. Only Script needs it, so it
// is kept only when a Script is set.
func (s *Server) attempt(body []byte) int {
	h := maphash.Bytes(s.hashSeed, body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attempts == nil {
		s.attempts = map[uint64]int{}
	}
	s.attempts[h]++
	return s.attempts[h]
}
