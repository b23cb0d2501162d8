package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// direct is how a Client calls a plain-HTTP endpoint that no proxy stands
// in front of (a local vLLM, a gateway on the same network): HTTP/1.1 on
// kept-alive connections, each call writing its request and reading its
// answer on the caller's goroutine. net/http's transport gives every
// connection two goroutines of its own and passes each request and answer
// between them and the caller over channels, with a context and a pool
// lookup per call; for answers that come back in microseconds that was the
// largest share of a run's CPU outside the store (BENCHMARKS.md, issue 17).
// The answer is read by http.ReadResponse, the transport's own parser, so
// headers, chunked bodies and Connection: close mean what they mean there.
// HTTPS, proxies and a transport of the caller's keep net/http.
type direct struct {
	addr string // host:port to dial
	// head is the request line's start ("POST " and the base URL's path);
	// lines are the header lines after it, less Content-Length, for a
	// plain call and for a stream.
	head   string
	lines  [2]string
	dialer net.Dialer
	// maxIdle bounds the connections kept alive between calls.
	maxIdle int
	mu      sync.Mutex
	idle    []*directConn
}

const (
	// directMaxHeader bounds an answer's headers, as the transport's
	// MaxResponseHeaderBytes does.
	directMaxHeader = 1 << 20
	// directIdleMost is how long a connection may sit idle and still be
	// used again. Servers close idle connections after a few seconds
	// (uvicorn and Node after 5, gunicorn after 2); net/http's transport
	// notices such a close as it happens, with a goroutine reading every
	// idle connection, which direct does without: a connection idle this
	// long is closed instead of risking a request on one the server has
	// just closed.
	directIdleMost = time.Second
	// directCopyMost is the largest body copied into a connection's
	// buffer, so that the request goes out in one write; a larger one is
	// written from where it is, with its head, in one writev.
	directCopyMost = 16 << 10
	// directMaxInformational bounds the 1xx answers skipped before the
	// final one, as the transport does.
	directMaxInformational = 5
)

// newDirect returns the direct way to base with key, or nil when they
// need net/http: not plain http, a proxy from the environment, user info,
// a query, a host that is not plain ASCII, or a key that is no valid
// header value (net/http refuses it with an error of its own).
func newDirect(base, key string, conns int) *direct {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil || u.Opaque != "" ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || !plainASCII(u.Host) || !headerValue(key) {
		return nil
	}
	if proxy, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil || proxy != nil {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	lines := "Host: " + u.Host + "\r\nUser-Agent: llmbatch\r\nContent-Type: application/json\r\n"
	if key != "" {
		lines += "Authorization: Bearer " + key + "\r\n"
	}
	return &direct{
		addr:  net.JoinHostPort(u.Hostname(), port),
		head:  "POST " + u.EscapedPath(),
		lines: [2]string{lines + "Accept: application/json\r\n", lines + "Accept: text/event-stream\r\n"},
		// As http.DefaultTransport dials.
		dialer:  net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle: max(2, conns),
	}
}

// plainASCII says whether s is printable ASCII without spaces, so that it
// can go into a request's head as it is.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '%' {
			return false
		}
	}
	return true
}

// headerValue says whether s can be a header's value as it is.
func headerValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' && s[i] != '\t' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// serves says whether a request to endpoint can go the direct way: its
// path needs no escaping.
func (d *direct) serves(endpoint string) bool {
	for i := 0; i < len(endpoint); i++ {
		c := endpoint[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '/' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return endpoint != ""
}

// post sends body to endpoint, asking for a stream or not, and returns the answer once its headers are in; the caller reads
// its body and closes it, which keeps the connection for the next call
// when the body was read to its end. A connection kept from an earlier
// call that the server closed before answering is replaced once (the
// server closed it as it sat idle). The deadline, if not zero, bounds
// everything until the body is closed; ctx ending aborts the call. sent
// says whether the request was written whole to a connection.
func (d *direct) post(ctx context.Context, endpoint string, body []byte, stream bool, deadline time.Time) (
	resp *http.Response, sent bool, err error) {
	for retried := false; ; retried = true {
		pc, err := d.get(ctx, deadline)
		if err != nil {
			return nil, false, err
		}
		resp, sent, err := pc.roundTrip(ctx, d, endpoint, body, stream, deadline)
		if err == nil {
			return resp, true, nil
		}
		pc.conn.Close()
		if !pc.reused || retried || ctx.Err() != nil || !closedEarly(err, sent) {
			return nil, sent, err
		}
	}
}

// closedEarly says whether err is a connection the server closed or reset
// before the request was written, or before the first byte of its answer.
func closedEarly(err error, sent bool) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	var closed *closedBeforeAnswer
	return !sent || errors.As(err, &closed)
}

// closedBeforeAnswer is a connection closed or reset by the server before
// the first byte of an answer.
type closedBeforeAnswer struct{ err error }

func (e *closedBeforeAnswer) Error() string { return e.err.Error() }

func (e *closedBeforeAnswer) Unwrap() error { return e.err }

// get returns a kept connection, else a new one.
func (d *direct) get(ctx context.Context, deadline time.Time) (*directConn, error) {
	now := time.Now()
	d.mu.Lock()
	for n := len(d.idle); n > 0; n = len(d.idle) {
		pc := d.idle[n-1]
		d.idle[n-1] = nil
		d.idle = d.idle[:n-1]
		if now.Sub(pc.idleSince) < directIdleMost {
			d.mu.Unlock()
			pc.reused = true
			return pc, nil
		}
		pc.conn.Close()
	}
	d.mu.Unlock()
	dialer := d.dialer
	dialer.Deadline = deadline
	conn, err := dialer.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	pc := &directConn{conn: conn, in: cappedReader{r: conn, left: math.MaxInt64, over: errHeadTooLarge}}
	pc.br = bufio.NewReader(&pc.in)
	return pc, nil
}

// put keeps pc for the next call, or closes it when enough are kept.
func (d *direct) put(pc *directConn) {
	pc.idleSince = time.Now()
	d.mu.Lock()
	if len(d.idle) < d.maxIdle {
		d.idle = append(d.idle, pc)
		pc = nil
	}
	d.mu.Unlock()
	if pc != nil {
		pc.conn.Close()
	}
}

// directConn is a connection of direct's, read through br.
type directConn struct {
	conn net.Conn
	br   *bufio.Reader
	// in is what br reads from conn: up to the header limit while an
	// answer's headers are read, else unbounded.
	in cappedReader
	// wbuf holds a request's head, and its body when small, for one write.
	wbuf []byte
	// head holds the last answer's head when parseHead read it.
	head      headBuf
	idleSince time.Time
	reused    bool // kept from an earlier call
}

// errHeadTooLarge is an answer whose headers pass directMaxHeader, worded
// as net/http words it.
var errHeadTooLarge = fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", directMaxHeader)

// abort makes the connection's reads and writes fail at once.
func (pc *directConn) abort() { pc.conn.SetDeadline(time.Unix(1, 0)) }

// roundTrip writes the request and reads the answer's headers; see
// direct.post.
func (pc *directConn) roundTrip(ctx context.Context, d *direct, endpoint string, body []byte, stream bool,
	deadline time.Time) (*http.Response, bool, error) {
	if err := pc.conn.SetDeadline(deadline); err != nil {
		return nil, false, err
	}
	stop := context.AfterFunc(ctx, pc.abort)
	if err := pc.write(d, endpoint, body, stream); err != nil {
		stop()
		return nil, false, err
	}
	resp, parsed, err := pc.read()
	if err != nil {
		stop()
		return nil, true, err
	}
	rb := &directBody{d: d, pc: pc, body: resp.Body, stop: stop, length: resp.ContentLength, close: resp.Close}
	if parsed {
		rb.body = nil // the body is what follows in br
	}
	resp.Body = rb
	return resp, true, nil
}

// write sends the request in one write.
func (pc *directConn) write(d *direct, endpoint string, body []byte, stream bool) error {
	b := append(pc.wbuf[:0], d.head...)
	b = append(b, endpoint...)
	b = append(b, " HTTP/1.1\r\n"...)
	if stream {
		b = append(b, d.lines[1]...)
	} else {
		b = append(b, d.lines[0]...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	if len(body) > directCopyMost {
		pc.wbuf = b
		bufs := net.Buffers{b, body}
		_, err := bufs.WriteTo(pc.conn)
		return err
	}
	b = append(b, body...)
	if cap(b) <= 2*directCopyMost {
		pc.wbuf = b
	}
	_, err := pc.conn.Write(b)
	return err
}

// read reads an answer's headers, past any 1xx; parsed says parseHead
// read them, and the answer has no Body.
func (pc *directConn) read() (resp *http.Response, parsed bool, err error) {
	pc.in.left = directMaxHeader
	defer func() { pc.in.left = math.MaxInt64 }()
	if _, err := pc.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return nil, false, &closedBeforeAnswer{err: err}
		}
		return nil, false, err
	}
	if buffered, _ := pc.br.Peek(pc.br.Buffered()); len(buffered) > 0 {
		if resp, n, ok := parseHead(buffered, &pc.head); ok {
			_, _ = pc.br.Discard(n)
			return resp, true, nil
		}
	}
	for i := 0; ; i++ {
		resp, err := http.ReadResponse(pc.br, nil)
		if err != nil {
			return nil, false, err
		}
		code := resp.StatusCode
		if code >= 200 || code < 100 || code == http.StatusSwitchingProtocols || i == directMaxInformational {
			return resp, false, nil
		}
	}
}

// directBody is an answer's body; closing it keeps the connection for the
// next call when the body was read to its end and nothing aborted it.
type directBody struct {
	d  *direct
	pc *directConn
	// body is http.ReadResponse's body; nil when parseHead read the head,
	// and the body is the next length bytes of pc.br.
	body   io.ReadCloser
	stop   func() bool // stops the abort on ctx; false once it ran
	length int64       // the Content-Length, -1 when unknown
	read   int64
	eof    bool
	close  bool // the server closes the connection after this answer
	closed bool
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.body == nil {
		return b.readBuffered(p)
	}
	n, err := b.body.Read(p)
	b.read += int64(n)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// readBuffered reads the body parseHead's answer announced, failing as
// http's body does when the connection ends first.
func (b *directBody) readBuffered(p []byte) (int, error) {
	left := b.length - b.read
	if left <= 0 {
		b.eof = true
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := b.pc.br.Read(p)
	b.read += int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Close does not drain what is left of the body (http's body would read
// it all): a connection whose answer was not read whole is closed.
func (b *directBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	whole := b.eof || (b.length >= 0 && b.read == b.length)
	// Bytes after the answer are none of the next call's: net/http drops
	// a connection that sends them, too.
	if b.stop() && whole && !b.close && b.pc.br.Buffered() == 0 {
		b.d.put(b.pc)
		return nil
	}
	return b.pc.conn.Close()
}
