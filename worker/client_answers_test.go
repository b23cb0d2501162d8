package worker

import (
	"context"
	"strings"
	"testing"

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
