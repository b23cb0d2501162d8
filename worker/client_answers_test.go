package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
)

// TestClientKeepsAnswers runs with vLLM's conventional key "EMPTY" against
// a server whose answers contain that word: every 2xx answer, plain or
// streamed, is kept as sent, while the error bodies and messages that
// repeat the key are still redacted.
func TestClientKeepsAnswers(t *testing.T) {
	const key = "EMPTY"
	errBody := `{"error":{"message":"model EMPTY is not served","type":"invalid_request_error"}}`
	s := fakeapi.Start(t, fakeapi.Config{Key: key, Script: func(c fakeapi.Call) fakeapi.Fault {
		switch c.CustomKey {
		case "400":
			return fakeapi.Fault{Status: 400, Body: errBody}
		case "200-error":
			return fakeapi.Fault{Status: 200, Body: `{"error":{"code":500,"message":"EMPTY broke"}}`}
		}
		return fakeapi.Fault{}
	}})
	for _, stream := range []bool{false, true} {
		c := newTestClient(s.URL(), ClientOptions{APIKey: key, Stream: stream})
		res, err := c.Call(context.Background(), chatRequest(testModel, "say EMPTY, not [REDACTED]"))
		if err != nil {
			t.Fatalf("stream %v: %v", stream, err)
		}
		if want := "echo: say EMPTY, not [REDACTED]"; res.Content != want {
			t.Errorf("stream %v: Content = %q, want %q", stream, res.Content, want)
		}
		if strings.Count(string(res.Raw), "EMPTY") != 1 || strings.Count(string(res.Raw), "[REDACTED]") != 1 {
			t.Errorf("stream %v: the body was changed: %s", stream, res.Raw)
		}
	}
	c := newTestClient(s.URL(), ClientOptions{APIKey: key})
	for _, prompt := range []string{"400", "200-error"} {
		res, err := c.Call(context.Background(), chatRequest(testModel, prompt))
		ce := mustCallError(t, res, err)
		if strings.Contains(ce.Message, key) || strings.Contains(string(ce.Body), key) || !strings.Contains(string(ce.Body), "[REDACTED]") {
			t.Errorf("%s: message %q, body %s: want the key redacted", prompt, ce.Message, ce.Body)
		}
	}
}

// TestClientFailureRequestID checks the provider's id kept with a failure
// that had an HTTP answer: the x-request-id header, else the error body's
// "id" or "request_id"; nothing without an answer.
func TestClientFailureRequestID(t *testing.T) {
	noHeader := map[string]string{"X-Request-Id": ""}
	faults := map[string]fakeapi.Fault{
		"header":     {Status: 400, Body: `{"id":"body-1","error":{"message":"bad"}}`, Header: map[string]string{"X-Request-Id": "hdr-1"}},
		"body-id":    {Status: 429, Body: `{"id":"body-2","error":{"message":"slow down"}}`, Header: noHeader},
		"request-id": {Status: 500, Body: `{"type":"error","error":{"message":"x"},"request_id":"req_3"}`, Header: noHeader},
		"none":       {Status: 503, Body: `upstream unavailable`, Header: noHeader},
		"2xx-error":  {Status: 200, Body: `{"error":{"code":500,"message":"oops"}}`, Header: map[string]string{"X-Request-Id": "hdr-4"}},
		"reset":      {Reset: true},
	}
	tests := []struct{ prompt, want string }{
		{"header", "hdr-1"}, {"body-id", "body-2"}, {"request-id", "req_3"}, {"none", ""}, {"2xx-error", "hdr-4"}, {"reset", ""},
	}
	s := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault { return faults[c.CustomKey] }})
	c := newTestClient(s.URL(), ClientOptions{})
	for _, tt := range tests {
		t.Run(tt.prompt, func(t *testing.T) {
			res, err := c.Call(context.Background(), chatRequest(testModel, tt.prompt))
			if ce := mustCallError(t, res, err); ce.RequestID != tt.want {
				t.Errorf("RequestID = %q, want %q", ce.RequestID, tt.want)
			}
		})
	}
}

// TestClientStreamErrorRequestID checks that an error inside a 2xx stream
// keeps the request id of that response's header.
func TestClientStreamErrorRequestID(t *testing.T) {
	s := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
		return fakeapi.Fault{CutAfterChunks: 2, Header: map[string]string{"X-Request-Id": "hdr-stream"}}
	}})
	c := newTestClient(s.URL(), ClientOptions{Stream: true})
	res, err := c.Call(context.Background(), chatRequest(testModel, "cut"))
	ce := mustCallError(t, res, err)
	if ce.Class != jobs.ClassBadResponse || ce.RequestID != "hdr-stream" {
		t.Errorf("class, request id = %s, %q; want bad_response, hdr-stream", ce.Class, ce.RequestID)
	}
}

// TestClientStreamErrorChunkRequestID checks that an error chunk inside a
// 2xx stream keeps the request id of that response's header, and that a
// key it repeats is redacted.
func TestClientStreamErrorChunkRequestID(t *testing.T) {
	s := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
		return fakeapi.Fault{StreamError: `{"error":{"message":"overloaded ` + testKey + `","code":503}}`,
			Header: map[string]string{"X-Request-Id": "hdr-chunk"}}
	}})
	c := newTestClient(s.URL(), ClientOptions{Stream: true})
	res, err := c.Call(context.Background(), chatRequest(testModel, "a b c"))
	ce := mustCallError(t, res, err)
	if ce.Class != jobs.ClassServer || ce.RequestID != "hdr-chunk" {
		t.Errorf("class, request id = %s, %q; want server_error, hdr-chunk", ce.Class, ce.RequestID)
	}
	if strings.Contains(string(ce.Body), testKey) || strings.Contains(ce.Message, testKey) {
		t.Errorf("the key is in the failure: %q %s", ce.Message, ce.Body)
	}
}

// TestClientStallCountsReasoning streams a model that thinks through
// vLLM's delta.reasoning for longer than the stall timeout: each reasoning
// delta is progress, so the stream is not abandoned; a stream that sends
// only keep-alives is.
func TestClientStallCountsReasoning(t *testing.T) {
	const interval, stall = 150 * time.Millisecond, 400 * time.Millisecond
	s := fakeapi.Start(t, fakeapi.Config{Key: testKey, Style: fakeapi.StyleVLLM, ChunkInterval: interval,
		Script: func(c fakeapi.Call) fakeapi.Fault {
			if c.CustomKey == "silent" {
				return fakeapi.Fault{KeepAliveOnly: true}
			}
			return fakeapi.Fault{}
		}})
	c := newTestClient(s.URL(), ClientOptions{Stream: true, StallTimeout: stall})
	start := time.Now()
	res, err := c.Call(context.Background(), chatRequest("deepseek/deepseek-r1", "one two three four five six seven eight"))
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if !strings.HasPrefix(res.ReasoningContent, "thinking about one") || time.Since(start) < 2*stall {
		t.Errorf("reasoning %q after %v: want a long think", res.ReasoningContent, time.Since(start))
	}
	if res.TTFT <= 0 || res.TTFT >= stall {
		t.Errorf("TTFT = %v, want the first reasoning delta's", res.TTFT)
	}
	res, err = c.Call(context.Background(), chatRequest("deepseek/deepseek-r1", "silent"))
	if ce := mustCallError(t, res, err); ce.Class != jobs.ClassTimeout || !strings.Contains(ce.Message, "stalled") {
		t.Errorf("silent stream: %v, want a stall", ce)
	}
}
