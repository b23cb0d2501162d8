package worker

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// DefaultMaxResponseBytes caps how much of one response body is read.
const DefaultMaxResponseBytes = 64 << 20

// Client sends request bodies to an OpenAI-compatible API.
type Client struct {
	base string
	key  string
	auth []string // the Authorization header, nil without a key
	http *http.Client
	// direct calls a plain-HTTP base URL without net/http's transport;
	// nil when the calls need it (see newDirect).
	direct  *direct
	conns   int
	timeout time.Duration
	maxBody int64
	stream  bool
	stall   time.Duration
	now     func() time.Time
}

// ClientOptions configure a Client.
type ClientOptions struct {
	BaseURL string
	// APIKey is sent as a bearer token and redacted from every message and
	// error body the client returns; 2xx answers are returned as sent.
	APIKey string
	// Timeout bounds one attempt, from sending to the last byte.
	Timeout time.Duration
	// Conns sizes the connection pool (the run's concurrency).
	Conns            int
	MaxResponseBytes int64
	// Stream sends every request as a stream (run --stream); otherwise a
	// body with "stream": true streams.
	Stream bool
	// StallTimeout abandons a stream that sends no token for this long
	// (keep-alive comments do not count); default DefaultStallTimeout.
	StallTimeout time.Duration
	// Transport replaces the default transport (tests).
	Transport http.RoundTripper
	Now       func() time.Time
}

// NewClient returns a client whose transport keeps opts.Conns connections
// alive, and which never follows redirects: a redirected POST would resend
// the key to wherever the redirect points.
func NewClient(opts ClientOptions) *Client {
	rt, custom := opts.Transport, opts.Transport != nil
	if !custom {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = max(100, opts.Conns)
		t.MaxIdleConnsPerHost = max(2, opts.Conns)
		// An API's headers are a few KiB; a hostile server's endless headers
		// must not cost Go's default 10 MiB per connection.
		t.MaxResponseHeaderBytes = 1 << 20
		rt = t
	}
	c := &Client{
		base:    strings.TrimRight(opts.BaseURL, "/"),
		key:     opts.APIKey,
		timeout: opts.Timeout,
		maxBody: opts.MaxResponseBytes,
		stream:  opts.Stream,
		stall:   opts.StallTimeout,
		now:     opts.Now,
		conns:   opts.Conns,
		http: &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
	}
	if c.key != "" {
		c.auth = []string{"Bearer " + c.key}
	}
	if !custom {
		c.direct = newDirect(c.base, c.key, c.conns)
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.stall <= 0 {
		c.stall = DefaultStallTimeout
	}
	return c
}

// WithBaseURL returns a client like c that sends to base (a provider
// whose Batch API lives under another path than its online endpoints).
func (c *Client) WithBaseURL(base string) *Client {
	d := *c
	d.base = strings.TrimRight(base, "/")
	if c.direct != nil {
		d.direct = newDirect(d.base, d.key, d.conns)
	}
	return &d
}

// CallError is a failed attempt: what went wrong, and how long the server
// asked us to wait before trying again.
type CallError struct {
	jobs.Failure
	RetryAfter time.Duration
	// NoConnection says the request was never written to a server (a
	// refused dial, an unknown host, a refused or failed TLS handshake):
	// nothing reached a server, which a wrong base URL gives.
	NoConnection bool
}

// Call makes one attempt at req. On success it returns the result; the
// error is a *CallError, or ctx's error when ctx ended (an interruption,
// which is nobody's failure).
func (c *Client) Call(ctx context.Context, req *jobs.Request) (*jobs.Result, error) {
	res, _, err := c.CallQuota(ctx, req)
	return res, err
}

// CallQuota is Call that also returns what the answer's x-ratelimit-*
// headers say about the provider's limits (all unknown when no answer
// arrived or it sent none).
func (c *Client) CallQuota(ctx context.Context, req *jobs.Request) (*jobs.Result, Quota, error) {
	q := noQuota
	res, err := c.call(ctx, req, &q)
	return res, q, err
}

func (c *Client) call(ctx context.Context, req *jobs.Request, q *Quota) (*jobs.Result, error) {
	start := c.now()
	body, stream, err := c.prepare(req)
	if err != nil {
		return nil, c.fail(jobs.ClassInvalidRequest, 0, "stored body is not a JSON object: "+err.Error(), nil)
	}
	// A stream's stall guard cancels it with a cause; a plain call needs
	// no context of its own but the timeout's (each context registers
	// with the run's, under its lock, on the path of every call).
	actx, cancel := ctx, context.CancelCauseFunc(func(error) {})
	if stream {
		actx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
	}
	var resp *http.Response
	var sent bool
	if c.direct != nil && c.direct.serves(string(req.Endpoint)) {
		resp, sent, err = c.postDirect(actx, req.Endpoint, body, stream)
	} else {
		if c.timeout > 0 {
			var cancelTimeout context.CancelFunc
			actx, cancelTimeout = context.WithTimeout(actx, c.timeout)
			defer cancelTimeout()
		}
		resp, sent, err = c.post(actx, req.Endpoint, body, stream)
	}
	if err != nil {
		return nil, c.unsentError(c.transportError(ctx, err), sent)
	}
	defer resp.Body.Close()
	if hasQuota(resp.Header) {
		*q = ParseQuota(resp.Header, c.now())
	}
	res, err := c.answer(ctx, actx, cancel, req, resp, stream, start)
	var ce *CallError
	if errors.As(err, &ce) && ce.RequestID == "" {
		ce.RequestID = c.redact(requestID(resp.Header, ce.Body))
	}
	return res, err
}

// post sends body to the endpoint through the transport; sent says
// whether the request was written whole to a connection.
func (c *Client) post(ctx context.Context, endpoint jobs.Endpoint, body []byte, stream bool) (*http.Response, bool, error) {
	trace := newSentTrace()
	hreq, err := c.newRequest(httptrace.WithClientTrace(ctx, &trace.ClientTrace), c.base+string(endpoint), body, stream)
	if err != nil {
		return nil, false, c.fail(jobs.ClassInvalidRequest, 0, err.Error(), nil)
	}
	resp, err := c.roundTrip(hreq)
	return resp, trace.sent.Load(), err
}

// postDirect is post the direct way, its timeout a deadline on the
// connection rather than a context, its errors wrapped as the transport's.
func (c *Client) postDirect(ctx context.Context, endpoint jobs.Endpoint, body []byte, stream bool) (*http.Response, bool, error) {
	var deadline time.Time
	if c.timeout > 0 {
		deadline = time.Now().Add(c.timeout)
	}
	resp, sent, err := c.direct.post(ctx, string(endpoint), body, stream, deadline)
	if err != nil {
		err = &url.Error{Op: "Post", URL: c.base + string(endpoint), Err: err}
	}
	return resp, sent, err
}

// prepare returns the body to send and whether it asks for a stream. An
// embeddings request is sent as stored and never streamed, --stream or
// not: the endpoint has no stream (and the import refuses a "stream" in
// its body).
func (c *Client) prepare(req *jobs.Request) ([]byte, bool, error) {
	if req.Endpoint == jobs.EndpointEmbeddings {
		return req.Body, false, nil
	}
	return prepareBody(req.Body, c.stream)
}

// answer reads the answer whose headers resp holds.
func (c *Client) answer(ctx, actx context.Context, cancel context.CancelCauseFunc, req *jobs.Request,
	resp *http.Response, stream bool, start time.Time) (*jobs.Result, error) {
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if ok && stream && isEventStream(resp.Header) {
		return c.readStreamed(ctx, actx, cancel, req, resp, start)
	}
	body, err := c.readResponse(resp)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if !ok {
		return nil, c.statusError(resp, body)
	}
	if req.Endpoint == jobs.EndpointEmbeddings {
		return c.resultOf(parseEmbeddings, body, resp, start)
	}
	return c.result(body, resp, start)
}

// result turns a 2xx completion body (plain, or assembled from a stream)
// into a Result.
func (c *Client) result(body []byte, resp *http.Response, start time.Time) (*jobs.Result, error) {
	return c.resultOf(parseResponse, body, resp, start)
}

// resultOf turns a 2xx body into a Result with parse, the reader of its
// endpoint's answers. The body is kept byte for byte, whatever it holds:
// redaction is for what we write about an answer (messages, logs, error
// bodies), and a short key such as vLLM's "EMPTY" would otherwise change
// every answer that contains the word. A body that is no answer is an
// error body and is redacted like one.
func (c *Client) resultOf(parse func([]byte) (*jobs.Result, *CallError), body []byte, resp *http.Response,
	start time.Time) (*jobs.Result, error) {
	res, cerr := parse(body)
	if cerr != nil {
		return nil, c.fail(cerr.Class, cerr.StatusCode, cerr.Message, cerr.Body)
	}
	res.StatusCode = resp.StatusCode
	res.ProviderRequestID = c.redact(resp.Header.Get("x-request-id"))
	res.Latency = c.now().Sub(start)
	return res, nil
}

// requestID is the provider's id of an answer, for a failure: the
// x-request-id header, else the error body's top-level "id", else its
// "request_id" (gateways with Anthropic-style errors send that), else "".
func requestID(h http.Header, body []byte) string {
	if id := h.Get("x-request-id"); id != "" {
		return id
	}
	for _, key := range []string{"id", "request_id"} {
		raw, ok := jobs.Lookup(body, key)
		var id string
		if ok && json.Unmarshal(raw, &id) == nil && id != "" {
			return id
		}
	}
	return ""
}

var errTooLarge = errors.New("response body too large")

// readResponse reads resp's body in one allocation when its length is
// known (an answer with a Content-Length), else as readBody.
func (c *Client) readResponse(resp *http.Response) ([]byte, error) {
	n := resp.ContentLength
	if n < 0 || n > c.maxBody {
		return c.readBody(resp.Body)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(resp.Body, body); err != nil {
		return nil, err
	}
	return body, nil
}

func (c *Client) readBody(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, c.maxBody+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > c.maxBody {
		return nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, c.maxBody)
	}
	return body, nil
}

// transportError classifies an error that left no usable answer. When the
// caller's ctx ended it is an interruption and returned as ctx's error.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	switch {
	case errors.Is(err, errTooLarge):
		return c.fail(jobs.ClassBadResponse, 0, err.Error(), nil)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return c.fail(jobs.ClassTimeout, 0, fmt.Sprintf("no complete answer within %s", c.timeout), nil)
	case isCertificateError(err):
		return c.fail(jobs.ClassTLS, 0, "the server's TLS certificate was refused ("+err.Error()+
			"); TLS verification is always on", nil)
	default:
		return c.fail(jobs.ClassNetwork, 0, err.Error(), nil)
	}
}

// sentTrace is a trace that says whether a request was written whole to
// a connection: a failure before that (a refused dial, an unknown host, a
// TLS handshake refused or spoken to a plain-HTTP server, a proxy that
// would not connect) never reached a server, which a wrong base URL gives;
// a failure after it is the server's. One allocation holds both.
type sentTrace struct {
	httptrace.ClientTrace
	sent atomic.Bool
}

func newSentTrace() *sentTrace {
	t := &sentTrace{}
	t.WroteRequest = t.wrote
	return t
}

func (t *sentTrace) wrote(w httptrace.WroteRequestInfo) {
	if w.Err == nil {
		t.sent.Store(true)
	}
}

// The headers of every call: shared, never modified (a transport only
// reads a request's headers), so that a call sets them without
// allocating or canonicalizing their names.
var (
	headerJSON      = []string{"application/json"}
	headerStream    = []string{"text/event-stream"}
	headerUserAgent = []string{"llmbatch"}
)

// newRequest is the POST of body to url under ctx.
func (c *Client) newRequest(ctx context.Context, url string, body []byte, stream bool) (*http.Request, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	h := hreq.Header
	h["Content-Type"] = headerJSON
	h["Accept"] = headerJSON
	if stream {
		h["Accept"] = headerStream
	}
	h["User-Agent"] = headerUserAgent
	if c.auth != nil {
		h["Authorization"] = c.auth
	}
	return hreq, nil
}

// roundTrip sends hreq through the client's transport, as http.Client.Do
// would for a client that follows no redirect and keeps no cookies, less
// its cost per call (a copy of the headers for redirects it never
// follows): a 3xx comes back as it is, and errors are wrapped alike.
func (c *Client) roundTrip(hreq *http.Request) (*http.Response, error) {
	resp, err := c.http.Transport.RoundTrip(hreq)
	if err == nil {
		return resp, nil
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && string(rh.RecordHeader[:]) == "HTTP/" {
		err = http.ErrSchemeMismatch
	}
	u := *hreq.URL
	u.User = nil
	return nil, &url.Error{Op: "Post", URL: u.String(), Err: err}
}

// unsentError marks a failure as one where no request reached a server.
func (c *Client) unsentError(err error, sent bool) error {
	var ce *CallError
	if errors.As(err, &ce) && !sent {
		ce.NoConnection = true
	}
	return err
}

// isCertificateError says whether err is a refused server certificate
// (unknown authority, wrong host name, expired, not valid for serving):
// every request would meet the same certificate, so it is fatal for the run.
func isCertificateError(err error) bool {
	var verify *tls.CertificateVerificationError
	var authority x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &host) || errors.As(err, &invalid)
}

func (c *Client) statusError(resp *http.Response, body []byte) *CallError {
	class := jobs.ClassForStatus(resp.StatusCode)
	msg := errorMessage(body)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		msg = fmt.Sprintf("redirect to %q not followed", resp.Header.Get("Location"))
	}
	e := c.fail(class, resp.StatusCode, msg, body)
	e.RetryAfter = RetryAfter(resp.Header, c.now())
	return e
}

func (c *Client) fail(class jobs.ErrorClass, code int, msg string, body []byte) *CallError {
	return &CallError{Failure: jobs.Failure{Class: class, StatusCode: code,
		Message: c.redact(msg), Body: c.redactBytes(body)}}
}

// redact removes the API key from text that may echo it (an error body, a
// URL in a transport error).
func (c *Client) redact(s string) string {
	if c.key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.key, "[REDACTED]")
}

func (c *Client) redactBytes(b []byte) []byte {
	if c.key == "" || !bytes.Contains(b, []byte(c.key)) {
		return b
	}
	return bytes.ReplaceAll(b, []byte(c.key), []byte("[REDACTED]"))
}
