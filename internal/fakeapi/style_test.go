package fakeapi

import (
	"strings"
	"testing"
)

// TestStyleStreams checks the events of a reasoning model's stream in each
// style, with float usage.
func TestStyleStreams(t *testing.T) {
	body := chatBody("deepseek/deepseek-r1", "hi", `"stream":true`, `"stream_options":{"include_usage":true}`,
		`"stop":["###"]`, `"service_tier":"flex"`)
	tests := []struct {
		style string
		want  []string
	}{
		{StyleVLLM, []string{
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"logprobs":null}],"service_tier":"flex","usage":null}`,
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"reasoning":"thinking "},"finish_reason":null,"logprobs":null}],"service_tier":"flex","usage":null}`,
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"reasoning":"about "},"finish_reason":null,"logprobs":null}],"service_tier":"flex","usage":null}`,
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"reasoning":"hi"},"finish_reason":null,"logprobs":null}],"service_tier":"flex","usage":null}`,
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"content":"echo: "},"finish_reason":null,"logprobs":null}],"service_tier":"flex","usage":null}`,
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null,"logprobs":null}],"service_tier":"flex","usage":null}`,
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop","logprobs":null,"stop_reason":"###"}],"service_tier":"flex","usage":null}`,
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[],"service_tier":"flex","usage":{"prompt_tokens":4.0,"completion_tokens":5.0,"total_tokens":9.0,"completion_tokens_details":{"reasoning_tokens":3.0}}}`,
			`[DONE]`,
		}},
		{StyleOpenRouter, []string{
			`{"id":"chatcmpl-1","provider":"FakeInfra","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"logprobs":null,"native_finish_reason":null}],"usage":null}`,
			`{"id":"chatcmpl-1","provider":"FakeInfra","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"thinking "},"finish_reason":null,"logprobs":null,"native_finish_reason":null}],"usage":null}`,
			`{"id":"chatcmpl-1","provider":"FakeInfra","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"about "},"finish_reason":null,"logprobs":null,"native_finish_reason":null}],"usage":null}`,
			`{"id":"chatcmpl-1","provider":"FakeInfra","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"hi"},"finish_reason":null,"logprobs":null,"native_finish_reason":null}],"usage":null}`,
			`{"id":"chatcmpl-1","provider":"FakeInfra","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"role":"assistant","content":"echo: "},"finish_reason":null,"logprobs":null,"native_finish_reason":null}],"usage":null}`,
			`{"id":"chatcmpl-1","provider":"FakeInfra","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null,"logprobs":null,"native_finish_reason":null}],"usage":null}`,
			`{"id":"chatcmpl-1","provider":"FakeInfra","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop","logprobs":null,"native_finish_reason":"stop"}],"usage":null}`,
			`{"id":"chatcmpl-1","provider":"FakeInfra","object":"chat.completion.chunk","created":1700000000,"model":"deepseek/deepseek-r1","choices":[],"usage":{"prompt_tokens":4.0,"completion_tokens":5.0,"total_tokens":9.0,"completion_tokens_details":{"reasoning_tokens":3.0}}}`,
			`[DONE]`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.style, func(t *testing.T) {
			s := Start(t, Config{Now: fixedNow, Style: tt.style, FloatUsage: true})
			_, got := stream(t, s, "/chat/completions", body)
			if g, w := strings.Join(got.data, "\n"), strings.Join(tt.want, "\n"); g != w {
				t.Errorf("events:\n%s\nwant:\n%s", g, w)
			}
			if st := waitIdle(t, s); st.Served != 1 || st.Usage.CompletionTokens != 5 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestStyleBodies checks the non-streamed answer of each style, as body
// writes it.
func TestStyleBodies(t *testing.T) {
	tests := []struct {
		cfg        Config
		body, want string
	}{
		{Config{Style: StyleVLLM}, chatBody("deepseek/deepseek-r1", "hi", `"stop":"</s>"`),
			`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"deepseek/deepseek-r1",
			"choices":[{"index":0,"message":{"role":"assistant","content":"echo: hi","reasoning":"thinking about hi"},"finish_reason":"stop","logprobs":null,"stop_reason":"</s>"}],
			"service_tier":null,"usage":{"prompt_tokens":4,"completion_tokens":5,"total_tokens":9,"completion_tokens_details":{"reasoning_tokens":3}}}`},
		{Config{Style: StyleVLLM, FloatUsage: true}, chatBody("m", "a b c", `"max_tokens":2`),
			`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m",
			"choices":[{"index":0,"message":{"role":"assistant","content":"echo: a"},"finish_reason":"length","logprobs":null,"stop_reason":null}],
			"service_tier":null,"usage":{"prompt_tokens":6.0,"completion_tokens":2.0,"total_tokens":8.0}}`},
		{Config{Style: StyleOpenRouter}, chatBody("deepseek/deepseek-r1", "hi"),
			`{"id":"chatcmpl-1","provider":"FakeInfra","object":"chat.completion","created":1700000000,"model":"deepseek/deepseek-r1",
			"choices":[{"index":0,"message":{"role":"assistant","content":"echo: hi","reasoning":"thinking about hi"},"finish_reason":"stop","logprobs":null,"native_finish_reason":"stop"}],
			"usage":{"prompt_tokens":4,"completion_tokens":5,"total_tokens":9,"completion_tokens_details":{"reasoning_tokens":3}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.cfg.Style, func(t *testing.T) {
			req, apiErr := parseRequest(chatEndpoint, []byte(tt.body))
			if apiErr != nil {
				t.Fatal(apiErr.Message)
			}
			cfg := tt.cfg
			rep := newReply(req, 1, 1700000000, strings.Contains(req.Model, "r1")).styled(&cfg)
			assertJSON(t, rep.body(), tt.want)
		})
	}
}

// TestFaultStreamError checks that an error chunk replaces the rest of a
// stream, which then ends with [DONE] and is not counted as served.
func TestFaultStreamError(t *testing.T) {
	const errChunk = `{"error":{"message":"overloaded","code":503}}`
	s := Start(t, Config{Now: fixedNow, Script: func(Call) Fault { return Fault{StreamError: errChunk} }})
	_, got := stream(t, s, "/chat/completions", chatBody("m", "one two three", `"stream":true`))
	if n := len(got.data); n != 4 || got.data[2] != errChunk || got.data[3] != "[DONE]" {
		t.Errorf("events %q, want two events, the error chunk and [DONE]", got.data)
	}
	if st := waitIdle(t, s); st.Served != 0 {
		t.Errorf("served %d, want 0", st.Served)
	}
}
