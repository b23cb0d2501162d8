package worker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
)

const testKey = "sk-test-0123456789abcdef"

// newTestClient returns a client for base with the test key and options
// overridden by opts.
func newTestClient(base string, opts ClientOptions) *Client {
	opts.BaseURL = base
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	return NewClient(opts)
}

func chatRequest(model, content string) *jobs.Request {
	return &jobs.Request{ID: 1, Endpoint: jobs.EndpointChat, Model: model, Body: chatBody(model, content)}
}

// mustCallError asserts that err is a *CallError and returns it.
func mustCallError(t *testing.T, res *jobs.Result, err error) *CallError {
	t.Helper()
	var ce *CallError
	if !errors.As(err, &ce) {
		t.Fatalf("Call = %+v, %v; want a *CallError", res, err)
	}
	if res != nil {
		t.Errorf("Call returned a result %+v with its error", res)
	}
	return ce
}

func TestClientSuccess(t *testing.T) {
	s := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	c := newTestClient(s.URL(), ClientOptions{})
	tests := []struct {
		name string
		req  *jobs.Request
		want jobs.Result
	}{
		{
			name: "Chat",
			req:  chatRequest(testModel, "hello world"),
			want: jobs.Result{Model: testModel, Content: "echo: hello world", FinishReason: "stop",
				Usage: jobs.Usage{Known: true, PromptTokens: 5, CompletionTokens: 3, TotalTokens: 8}},
		},
		{
			name: "ChatReasoning",
			req:  chatRequest("deepseek/deepseek-r1", "hello world"),
			want: jobs.Result{Model: "deepseek/deepseek-r1", Content: "echo: hello world",
				ReasoningContent: "thinking about hello world", FinishReason: "stop",
				Usage: jobs.Usage{Known: true, PromptTokens: 5, CompletionTokens: 7, ReasoningTokens: 4, TotalTokens: 12}},
		},
		{
			name: "Completions",
			req: &jobs.Request{ID: 2, Endpoint: jobs.EndpointCompletions, Model: testModel,
				Body: []byte(`{"model":"deepseek/deepseek-v3","prompt":"once upon","max_tokens":2}`)},
			want: jobs.Result{Model: testModel, Content: "echo: once", FinishReason: "length",
				Usage: jobs.Usage{Known: true, PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Call(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if res.StatusCode != http.StatusOK {
				t.Errorf("StatusCode = %d, want 200", res.StatusCode)
			}
			n, ok := strings.CutPrefix(res.ProviderRequestID, "req-")
			if !ok || !strings.HasSuffix(res.ResponseID, "cmpl-"+n) {
				t.Errorf("ResponseID, ProviderRequestID = %q, %q; want \"…cmpl-N\" and \"req-N\" (x-request-id)",
					res.ResponseID, res.ProviderRequestID)
			}
			if res.Latency <= 0 {
				t.Errorf("Latency = %v, want > 0", res.Latency)
			}
			if !json.Valid(res.Raw) || !strings.Contains(string(res.Raw), `"usage"`) {
				t.Errorf("Raw = %s, want the JSON body", res.Raw)
			}
			got := *res
			got.StatusCode, got.ResponseID, got.ProviderRequestID, got.Raw, got.Latency = 0, "", "", nil, 0
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("Call =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestClientStatusErrors(t *testing.T) {
	faults := map[string]fakeapi.Fault{
		"400":         {Status: 400},
		"404":         {Status: 404},
		"422":         {Status: 422, Body: `{"error":{"message":"top_p must be at most 1","type":"invalid_request_error"}}`},
		"401":         {Status: 401},
		"403":         {Status: 403},
		"402":         {Status: 402},
		"408":         {Status: 408},
		"409":         {Status: 409},
		"429":         {Status: 429, Header: map[string]string{"Retry-After": "2"}},
		"429-ms":      {Status: 429, Header: map[string]string{"Retry-After": "2", "retry-after-ms": "150"}},
		"500":         {Status: 500},
		"502-html":    {Status: 502, Body: "<html><body>Bad Gateway</body></html>"},
		"503":         {Status: 503, Header: map[string]string{"Retry-After": "1"}},
		"200-error":   {Status: 200, Body: `{"error":{"code":429,"message":"rate limited upstream"}}`},
		"200-badjson": {BadJSON: true},
	}
	s := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
		return faults[c.CustomKey]
	}})
	c := newTestClient(s.URL(), ClientOptions{})
	tests := []struct {
		key        string
		class      jobs.ErrorClass
		status     int
		retryAfter time.Duration
		inMessage  string
	}{
		{"400", jobs.ClassInvalidRequest, 400, 0, "injected 400"},
		{"404", jobs.ClassInvalidRequest, 404, 0, "injected 404"},
		{"422", jobs.ClassInvalidRequest, 422, 0, "top_p must be at most 1"},
		{"401", jobs.ClassAuth, 401, 0, ""},
		{"403", jobs.ClassAuth, 403, 0, ""},
		{"402", jobs.ClassPayment, 402, 0, "Insufficient balance"},
		{"408", jobs.ClassServer, 408, 0, ""},
		{"409", jobs.ClassServer, 409, 0, ""},
		{"429", jobs.ClassRateLimited, 429, 2 * time.Second, "Rate limit"},
		{"429-ms", jobs.ClassRateLimited, 429, 150 * time.Millisecond, "Rate limit"},
		{"500", jobs.ClassServer, 500, 0, "injected 500"},
		{"502-html", jobs.ClassServer, 502, 0, "Bad Gateway"},
		{"503", jobs.ClassServer, 503, time.Second, ""},
		{"200-error", jobs.ClassRateLimited, 429, 0, "rate limited upstream"},
		{"200-badjson", jobs.ClassBadResponse, 0, 0, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			res, err := c.Call(context.Background(), chatRequest(testModel, tt.key))
			ce := mustCallError(t, res, err)
			if ce.Class != tt.class || ce.StatusCode != tt.status {
				t.Errorf("class, status = %s, %d; want %s, %d (%v)", ce.Class, ce.StatusCode, tt.class, tt.status, ce)
			}
			if ce.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", ce.RetryAfter, tt.retryAfter)
			}
			if !strings.Contains(ce.Message, tt.inMessage) {
				t.Errorf("Message = %q, want it to contain %q", ce.Message, tt.inMessage)
			}
			if tt.status >= 400 {
				// The provider's body is kept as sent, for the errors export.
				want := faults[tt.key].Body
				if want == "" && !strings.Contains(string(ce.Body), `"error"`) {
					t.Errorf("Body = %q, want the provider's error body", ce.Body)
				} else if want != "" && string(ce.Body) != want {
					t.Errorf("Body = %q, want %q", ce.Body, want)
				}
			}
		})
	}
}

func TestClientWrongKeyIsAuth(t *testing.T) {
	s := fakeapi.Start(t, fakeapi.Config{Key: "sk-the-right-one"})
	c := newTestClient(s.URL(), ClientOptions{APIKey: "sk-a-wrong-one"})
	res, err := c.Call(context.Background(), chatRequest(testModel, "hi"))
	ce := mustCallError(t, res, err)
	if ce.Class != jobs.ClassAuth || ce.StatusCode != 401 || ce.Class.Disposition() != jobs.Fatal {
		t.Errorf("Call = %v, want a fatal auth error (HTTP 401)", ce)
	}
}

func TestClientTransportErrors(t *testing.T) {
	s := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
		switch c.CustomKey {
		case "reset":
			return fakeapi.Fault{Reset: true}
		case "slow":
			return fakeapi.Fault{Delay: 5 * time.Second}
		case "hang":
			return fakeapi.Fault{KeepAliveOnly: true}
		case "cut":
			return fakeapi.Fault{CutAfterChunks: 1}
		}
		return fakeapi.Fault{}
	}})
	t.Run("ConnectionReset", func(t *testing.T) {
		c := newTestClient(s.URL(), ClientOptions{})
		res, err := c.Call(context.Background(), chatRequest(testModel, "reset"))
		if ce := mustCallError(t, res, err); ce.Class != jobs.ClassNetwork || ce.StatusCode != 0 {
			t.Errorf("Call = %v, want a network error", ce)
		}
	})
	t.Run("BodyCutShort", func(t *testing.T) {
		c := newTestClient(s.URL(), ClientOptions{})
		res, err := c.Call(context.Background(), chatRequest(testModel, "cut"))
		if ce := mustCallError(t, res, err); ce.Class.Disposition() != jobs.Retryable {
			t.Errorf("Call = %v, want a retryable error", ce)
		}
	})
	for _, key := range []string{"slow", "hang"} {
		t.Run("Timeout/"+key, func(t *testing.T) {
			c := newTestClient(s.URL(), ClientOptions{Timeout: 100 * time.Millisecond})
			start := time.Now()
			res, err := c.Call(context.Background(), chatRequest(testModel, key))
			ce := mustCallError(t, res, err)
			if ce.Class != jobs.ClassTimeout {
				t.Errorf("Call = %v, want a timeout", ce)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Call took %v with a 100ms timeout", d)
			}
		})
	}
	t.Run("TimeoutCoversBody", func(t *testing.T) {
		// Headers at once, then a body that never ends: the timeout bounds
		// the whole attempt, not only the wait for headers.
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"choices":[`))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}))
		defer ts.Close()
		c := newTestClient(ts.URL, ClientOptions{Timeout: 100 * time.Millisecond})
		res, err := c.Call(context.Background(), chatRequest(testModel, "x"))
		if ce := mustCallError(t, res, err); ce.Class != jobs.ClassTimeout {
			t.Errorf("Call = %v, want a timeout", ce)
		}
	})
	t.Run("ConnectionRefused", func(t *testing.T) {
		ts := httptest.NewServer(http.NotFoundHandler())
		url := ts.URL
		ts.Close()
		c := newTestClient(url, ClientOptions{})
		res, err := c.Call(context.Background(), chatRequest(testModel, "x"))
		if ce := mustCallError(t, res, err); ce.Class != jobs.ClassNetwork {
			t.Errorf("Call = %v, want a network error", ce)
		}
	})
}

// A refused certificate is fatal: every request would meet it. The test
// servers' certificates are self-signed, so the client (which always
// verifies) refuses them; the other kinds are classified from their errors.
func TestClientRefusedCertificate(t *testing.T) {
	t.Run("UnknownAuthority", func(t *testing.T) {
		ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.Error("a request got through an unverified TLS connection")
		}))
		defer ts.Close()
		ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
		c := newTestClient(ts.URL, ClientOptions{})
		res, err := c.Call(context.Background(), chatRequest(testModel, "x"))
		ce := mustCallError(t, res, err)
		if ce.Class != jobs.ClassTLS || ce.Class.Disposition() != jobs.Fatal || ce.StatusCode != 0 {
			t.Errorf("Call = %v, want a fatal tls error", ce)
		}
		for _, want := range []string{"certificate was refused", "verification is always on", "unknown authority"} {
			if !strings.Contains(ce.Message, want) {
				t.Errorf("message %q does not say %q", ce.Message, want)
			}
		}
		if strings.Contains(ce.Message, testKey) {
			t.Errorf("message holds the key: %q", ce.Message)
		}
	})
	for name, err := range map[string]error{
		"Hostname":     &url.Error{Op: "Post", Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "api.example"}},
		"Expired":      fmt.Errorf("wrapped: %w", x509.CertificateInvalidError{Reason: x509.Expired}),
		"Verification": &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}},
	} {
		t.Run(name, func(t *testing.T) {
			if !isCertificateError(err) {
				t.Errorf("isCertificateError(%v) = false", err)
			}
		})
	}
	if isCertificateError(errors.New("connection reset by peer")) {
		t.Error("a reset counts as a certificate error")
	}
}

func TestClientCallerCancel(t *testing.T) {
	s := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(fakeapi.Call) fakeapi.Fault {
		return fakeapi.Fault{KeepAliveOnly: true}
	}})
	c := newTestClient(s.URL(), ClientOptions{Timeout: time.Minute})
	t.Run("CancelledDuringCall", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		res, err := c.Call(ctx, chatRequest(testModel, "x"))
		var ce *CallError
		if !errors.Is(err, context.Canceled) || errors.As(err, &ce) || res != nil {
			t.Fatalf("Call = %+v, %v; want context.Canceled and no *CallError", res, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Call returned %v after the cancel", d)
		}
	})
	t.Run("CancelledBefore", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if res, err := c.Call(ctx, chatRequest(testModel, "x")); err != context.Canceled || res != nil {
			t.Fatalf("Call = %+v, %v; want context.Canceled", res, err)
		}
	})
	t.Run("CallerDeadline", func(t *testing.T) {
		// The caller's own deadline ends the run's context: an interruption,
		// not the attempt's timeout.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if res, err := c.Call(ctx, chatRequest(testModel, "x")); err != context.DeadlineExceeded || res != nil {
			t.Fatalf("Call = %+v, %v; want context.DeadlineExceeded", res, err)
		}
	})
}

func TestClientResponseSizeLimit(t *testing.T) {
	t.Run("Fake", func(t *testing.T) {
		s := fakeapi.Start(t, fakeapi.Config{Key: testKey})
		c := newTestClient(s.URL(), ClientOptions{MaxResponseBytes: 64})
		res, err := c.Call(context.Background(), chatRequest(testModel, "a prompt whose answer is longer than 64 bytes"))
		ce := mustCallError(t, res, err)
		if ce.Class != jobs.ClassBadResponse || !strings.Contains(ce.Message, "too large") {
			t.Errorf("Call = %v, want bad_response: too large", ce)
		}
	})
	t.Run("EndlessBody", func(t *testing.T) {
		// A server that would send 4 GiB: the client stops reading after
		// the limit, so neither memory nor time runs out.
		var sent atomic.Int64
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			chunk := []byte(`{"choices":[{"message":{"content":"` + strings.Repeat("x", 64<<10))
			for i := 0; i < 4<<20/64; i++ {
				n, err := w.Write(chunk)
				sent.Add(int64(n))
				if err != nil {
					return
				}
			}
		}))
		defer ts.Close()
		const limit = 1 << 20
		c := newTestClient(ts.URL, ClientOptions{MaxResponseBytes: limit})
		res, err := c.Call(context.Background(), chatRequest(testModel, "x"))
		ce := mustCallError(t, res, err)
		if ce.Class != jobs.ClassBadResponse || !strings.Contains(ce.Message, "too large") {
			t.Errorf("Call = %v, want bad_response: too large", ce)
		}
		if len(ce.Body) > limit {
			t.Errorf("the error kept a %d-byte body", len(ce.Body))
		}
		ts.CloseClientConnections()
		if n := sent.Load(); n > 64<<20 {
			t.Errorf("the server could write %d MiB before the client stopped reading", n>>20)
		}
		t.Logf("server wrote %d KiB before the client hung up (limit %d KiB)", sent.Load()>>10, limit>>10)
	})
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var hits atomic.Int64
			var sawAuth atomic.Value
			sawAuth.Store("")
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				sawAuth.Store(r.Header.Get("Authorization"))
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"choices":[{"message":{"content":"stolen"}}]}`))
			}))
			defer target.Close()
			redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+r.URL.Path, code)
			}))
			defer redirector.Close()
			c := newTestClient(redirector.URL, ClientOptions{})
			res, err := c.Call(context.Background(), chatRequest(testModel, "x"))
			ce := mustCallError(t, res, err)
			if ce.StatusCode != code || ce.Class.Disposition() != jobs.Permanent || !strings.Contains(ce.Message, "not followed") {
				t.Errorf("Call = %v, want a permanent error saying the %d was not followed", ce, code)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("the redirect target got %d requests (Authorization %q), want none", n, sawAuth.Load())
			}
		})
	}
}

// TestClientRedactsKey checks that the key is kept out of every message,
// error body and request id the client returns.
func TestClientRedactsKey(t *testing.T) {
	const key = "sk-live-SECRET-4f7a9c2e"
	echo := `the key ` + key + ` is wrong`
	faults := map[string]fakeapi.Fault{
		"400": {Status: 400, Body: `{"error":{"message":"` + echo + `","type":"invalid_request_error"}}`,
			Header: map[string]string{"X-Request-Id": key}},
		"500-text": {Status: 500, Body: echo},
		"200": {Status: 200, Header: map[string]string{"X-Request-Id": "req-" + key},
			Body: `{"id":"` + key + `","model":"` + key + `","choices":[{"message":{"content":"` + echo +
				`","reasoning_content":"` + echo + `"},"finish_reason":"` + key + `"}]}`},
		"200-error": {Status: 200, Body: `{"error":{"code":500,"message":"` + echo + `"}}`},
		"200-bad":   {Status: 200, Body: `{"choices":[{"message":{"content":"` + echo},
		"redirect":  {Status: 302, Header: map[string]string{"Location": "https://evil.example/?key=" + key}},
	}
	s := fakeapi.Start(t, fakeapi.Config{Key: key, Script: func(c fakeapi.Call) fakeapi.Fault {
		return faults[c.CustomKey]
	}})
	c := newTestClient(s.URL(), ClientOptions{APIKey: key})
	for name := range faults {
		t.Run(name, func(t *testing.T) {
			res, err := c.Call(context.Background(), chatRequest(testModel, name))
			var dump []byte
			if err != nil {
				ce := mustCallError(t, res, err)
				dump = fmt.Appendf(nil, "%s\n%v\n%+v\n%s", err.Error(), ce, *ce, ce.Body)
			} else {
				// A 2xx answer is kept as sent (TestClientKeepsAnswers);
				// what we say about it is not.
				dump = []byte(res.ProviderRequestID)
				if res.Content != echo || !strings.Contains(string(res.Raw), key) {
					t.Errorf("Content = %q, want the answer as sent", res.Content)
				}
			}
			if strings.Contains(string(dump), key) || strings.Contains(string(dump), "SECRET") {
				t.Errorf("the API key appears in what Call returned:\n%s", dump)
			}
		})
	}
}

// TestNewClientSizesPool checks that the transport keeps a connection per
// worker alive, so that a run does not reconnect for every request.
func TestNewClientSizesPool(t *testing.T) {
	c := NewClient(ClientOptions{BaseURL: "http://127.0.0.1:1/v1/", Conns: 300})
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport is %T, want *http.Transport", c.http.Transport)
	}
	if tr.MaxIdleConnsPerHost != 300 || tr.MaxIdleConns < 300 {
		t.Errorf("MaxIdleConnsPerHost, MaxIdleConns = %d, %d; want 300, >= 300", tr.MaxIdleConnsPerHost, tr.MaxIdleConns)
	}
	if c.base != "http://127.0.0.1:1/v1" {
		t.Errorf("base = %q, want the trailing slash trimmed", c.base)
	}
	if c.maxBody != DefaultMaxResponseBytes {
		t.Errorf("maxBody = %d, want DefaultMaxResponseBytes", c.maxBody)
	}
}
