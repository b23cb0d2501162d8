package fakeapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestAnswers(t *testing.T) {
	tests := []struct {
		name, path, body, want string
	}{
		{
			name: "Chat", path: "/chat/completions",
			body: `{"model":"deepseek/deepseek-v3","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"prompt-17 hello"}],"top_k":5}`,
			want: `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"deepseek/deepseek-v3",
				"choices":[{"index":0,"message":{"role":"assistant","content":"echo: prompt-17 hello"},"finish_reason":"stop","logprobs":null}],
				"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`,
		},
		{
			name: "ChatN2", path: "/chat/completions",
			body: chatBody("m", "hi", `"n":2`),
			want: `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m",
				"choices":[{"index":0,"message":{"role":"assistant","content":"echo: hi"},"finish_reason":"stop","logprobs":null},
				           {"index":1,"message":{"role":"assistant","content":"echo: hi"},"finish_reason":"stop","logprobs":null}],
				"usage":{"prompt_tokens":4,"completion_tokens":4,"total_tokens":8}}`,
		},
		{
			name: "ChatContentParts", path: "/chat/completions",
			body: `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hello there"}]}]}`,
			want: `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m",
				"choices":[{"index":0,"message":{"role":"assistant","content":"echo: hello there"},"finish_reason":"stop","logprobs":null}],
				"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`,
		},
		{
			name: "ChatMaxTokens", path: "/chat/completions",
			body: chatBody("m", "a b c", `"max_tokens":2`),
			want: `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m",
				"choices":[{"index":0,"message":{"role":"assistant","content":"echo: a"},"finish_reason":"length","logprobs":null}],
				"usage":{"prompt_tokens":6,"completion_tokens":2,"total_tokens":8}}`,
		},
		{
			name: "Reasoning", path: "/chat/completions",
			body: chatBody("deepseek/deepseek-r1", "why sky"),
			want: `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"deepseek/deepseek-r1",
				"choices":[{"index":0,"message":{"role":"assistant","content":"echo: why sky","reasoning_content":"thinking about why sky"},"finish_reason":"stop","logprobs":null}],
				"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12,"completion_tokens_details":{"reasoning_tokens":4}}}`,
		},
		{
			name: "Completion", path: "/completions",
			body: `{"model":"m","prompt":"a b"}`,
			want: `{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m",
				"choices":[{"index":0,"text":"echo: a b","finish_reason":"stop","logprobs":null}],
				"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`,
		},
		{
			name: "CompletionPromptArrayN2", path: "/completions",
			body: `{"model":"m","prompt":["x","y z"],"n":2}`,
			want: `{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m",
				"choices":[{"index":0,"text":"echo: x","finish_reason":"stop","logprobs":null},
				           {"index":1,"text":"echo: x","finish_reason":"stop","logprobs":null},
				           {"index":2,"text":"echo: y z","finish_reason":"stop","logprobs":null},
				           {"index":3,"text":"echo: y z","finish_reason":"stop","logprobs":null}],
				"usage":{"prompt_tokens":6,"completion_tokens":10,"total_tokens":16}}`,
		},
		{
			name: "CompletionTokens", path: "/completions",
			body: `{"model":"m","prompt":[1,2,3]}`,
			want: `{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m",
				"choices":[{"index":0,"text":"echo: 1 2 3","finish_reason":"stop","logprobs":null}],
				"usage":{"prompt_tokens":6,"completion_tokens":4,"total_tokens":10}}`,
		},
		{
			name: "CompletionTokenArrays", path: "/completions",
			body: `{"model":"m","prompt":[[1,2],[3]]}`,
			want: `{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m",
				"choices":[{"index":0,"text":"echo: 1 2","finish_reason":"stop","logprobs":null},
				           {"index":1,"text":"echo: 3","finish_reason":"stop","logprobs":null}],
				"usage":{"prompt_tokens":6,"completion_tokens":5,"total_tokens":11}}`,
		},
		{
			name: "ReasoningModelOnCompletions", path: "/completions",
			body: `{"model":"deepseek-r1","prompt":"q"}`,
			want: `{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"deepseek-r1",
				"choices":[{"index":0,"text":"echo: q","finish_reason":"stop","logprobs":null}],
				"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, Config{Now: fixedNow})
			res := mustPost(t, s, tt.path, tt.body)
			if res.status != http.StatusOK {
				t.Fatalf("status %d, body %s", res.status, res.body)
			}
			if got := res.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if got := res.header.Get("x-request-id"); got != "req-1" {
				t.Errorf("x-request-id %q, want req-1", got)
			}
			assertJSON(t, res.body, tt.want)
		})
	}
}

func TestReasoningModelsConfig(t *testing.T) {
	s := Start(t, Config{ReasoningModels: []string{"thinker"}})
	for model, want := range map[string]bool{"big-thinker-2": true, "deepseek-r1": false} {
		var got struct {
			Choices []struct {
				Message struct {
					ReasoningContent *string `json:"reasoning_content"`
				} `json:"message"`
			} `json:"choices"`
		}
		res := mustPost(t, s, "/chat/completions", chatBody(model, "x"))
		if err := json.Unmarshal(res.body, &got); err != nil {
			t.Fatal(err)
		}
		if has := got.Choices[0].Message.ReasoningContent != nil; has != want {
			t.Errorf("%s: reasoning_content present = %v, want %v", model, has, want)
		}
	}
}

func TestRequestErrors(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		status                   int
		param                    any
	}{
		{"NotJSON", "POST", "/v1/chat/completions", `{"model":`, 400, nil},
		{"NoMessages", "POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, 400, "messages"},
		{"NZero", "POST", "/v1/chat/completions", chatBody("m", "x", `"n":0`), 400, "n"},
		{"NoPrompt", "POST", "/v1/completions", `{"model":"m"}`, 400, "prompt"},
		{"BadPrompt", "POST", "/v1/completions", `{"model":"m","prompt":[{"a":1}]}`, 400, "prompt"},
		{"UnknownPath", "POST", "/v1/models", `{}`, 404, nil},
		{"Get", "GET", "/v1/chat/completions", ``, 405, nil},
	}
	s := Start(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, strings.TrimSuffix(s.URL(), "/v1")+tt.path, strings.NewReader(tt.body))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			var got struct {
				Error map[string]any `json:"error"`
			}
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if msg, _ := got.Error["message"].(string); msg == "" || got.Error["type"] == nil {
				t.Errorf("error body %v lacks message or type", got.Error)
			}
			if got.Error["param"] != tt.param {
				t.Errorf("param %v, want %v", got.Error["param"], tt.param)
			}
		})
	}
}

func TestAnyPathPrefix(t *testing.T) {
	s := Start(t, Config{})
	base := strings.TrimSuffix(s.URL(), "/v1")
	res, err := http.Post(base+"/v3/openai/chat/completions", "application/json", strings.NewReader(chatBody("m", "x")))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("status %d", res.StatusCode)
	}
}

func TestAuth(t *testing.T) {
	const key, wrong = "sk-secret-123", "sk-wrong-456"
	s := Start(t, Config{Key: key, Faults: Faults{ServerError: 1}})
	for name, headers := range map[string][]string{
		"Missing":  nil,
		"Wrong":    {"Authorization: Bearer " + wrong},
		"NoBearer": {"Authorization: " + key},
	} {
		t.Run(name, func(t *testing.T) {
			res := mustPost(t, s, "/chat/completions", chatBody("m", "x"), headers...)
			if res.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 before any fault", res.status)
			}
			assertErrorCode(t, res.body, "invalid_api_key")
			for _, k := range []string{key, wrong, "secret", "wrong-456"} {
				if strings.Contains(string(res.body), k) {
					t.Errorf("401 body leaks %q: %s", k, res.body)
				}
			}
		})
	}
	s.SetConfig(Config{Key: key})
	if res := mustPost(t, s, "/chat/completions", chatBody("m", "x"), "Authorization: Bearer "+key); res.status != 200 {
		t.Errorf("right key: status %d", res.status)
	}
}

func assertErrorCode(t *testing.T, body []byte, code string) {
	t.Helper()
	var e struct {
		Error struct {
			Message, Type string
			Code          any
		}
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	if e.Error.Code != code || e.Error.Message == "" || e.Error.Type == "" {
		t.Errorf("error %+v, want code %q with a message and type", e.Error, code)
	}
}
