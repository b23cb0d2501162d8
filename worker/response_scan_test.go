package worker

import (
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// Bodies as providers send them; each must take the fast path.
const (
	openAIChat = `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,` +
		`"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?",` +
		`"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,` +
		`"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,` +
		`"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":null}`
	openAIToolCall = `{"id":"chatcmpl-abc123","object":"chat.completion","created":1699896916,"model":"gpt-4o-mini","choices":[{"index":0,` +
		`"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","type":"function","function":{"name":"get_current_weather",` +
		`"arguments":"{\n\"location\": \"Boston, MA\"\n}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],` +
		`"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99,"completion_tokens_details":{"reasoning_tokens":0}}}`
	deepSeekR1 = `{"id":"8f3c1e2a-5b7d-4c9e-a1f0-123456789abc","object":"chat.completion","created":1738000000,"model":"deepseek-reasoner",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"The answer is **42**.\n\nIt follows from 6 × 7.",` +
		`"reasoning_content":"Okay, the user wants the product of 6 and 7.\nLet me check: 6 × 7 = 42. \"Simple\" — yes."},` +
		`"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":17,"completion_tokens":120,"total_tokens":137,` +
		`"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":98},` +
		`"prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":17},"system_fingerprint":"fp_5417b77867_prod0225"}`
	ppinfraR1 = `{"id":"0195e3a1b2c3","object":"chat.completion","created":1742000000,"model":"deepseek/deepseek-r1",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"\n\n\u4f60\u597d\uff01","reasoning_content":"\u55ef\uff0c` +
		`\u7528\u6237\u5728\u6253\u62db\u547c\u3002\n"},"finish_reason":"stop","content_filter_results":{"hate":{"filtered":false}}}],` +
		`"usage":{"prompt_tokens":6,"completion_tokens":40,"total_tokens":46,"prompt_tokens_details":null,"completion_tokens_details":null}}`
	openRouter = `{"id":"gen-1742-abc","provider":"DeepInfra","model":"meta-llama/llama-3.3-70b-instruct","object":"chat.completion",` +
		`"created":1742000000,"choices":[{"logprobs":null,"finish_reason":"length","native_finish_reason":"length","index":0,` +
		`"message":{"role":"assistant","content":"Once upon a time","refusal":null,"reasoning":null}}],` +
		`"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16,"cost":0.0000052,"is_byok":false,` +
		`"prompt_tokens_details":{"cached_tokens":0},"cost_details":{"upstream_inference_cost":null}}}`
	completionsLogprobs = `{"id":"cmpl-9","object":"text_completion","created":1700000000,"model":"gpt-3.5-turbo-instruct",` +
		`"choices":[{"text":" Paris.","index":0,"logprobs":{"tokens":[" Paris","."],"token_logprobs":[-0.0012,-1.5e-05],` +
		`"top_logprobs":[{" Paris":-0.0012},{".":-1.5E-5}],"text_offset":[20,26]},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}`
	escapes = "{\"id\":\"e\",\"choices\":[{\"message\":{\"content\":\"tab\\tquote\\\" slash\\/ back\\\\ \\u003cb\\u003e \\u00e9 " +
		"\\ud83d\\ude00 lone \\ud800 \\udc00\\ud83d\\ude00 nul\\u0000\"}}],\"usage\":{\"prompt_tokens\":-0}}\n"
)

func TestScanResponseFastPath(t *testing.T) {
	tests := []struct{ name, body string }{
		{"OpenAIChat", openAIChat},
		{"OpenAIToolCall", openAIToolCall},
		{"DeepSeekR1", deepSeekR1},
		{"PPInfraR1", ppinfraR1},
		{"OpenRouter", openRouter},
		{"CompletionsLogprobs", completionsLogprobs},
		{"Escapes", escapes},
		{"ErrorNull", `{"error":null,"choices":[null,{"text":null}]}`},
		{"PrettyPrinted", "{\n  \"id\": \"x\",\n  \"choices\": [ { \"text\": \"a\" } ],\n  \"error\": null\n}"},
		{"DeepNotRead", `{"choices":[],"x":` + strings.Repeat("[", maxScanDepth-1) + strings.Repeat("]", maxScanDepth-1) + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertFastPath(t, []byte(tt.body))
		})
	}
}

// TestScanResponseFakeAPI checks that what the repository's fake server
// answers takes the fast path, including encoding/json's escapes of <, >
// and & in content.
func TestScanResponseFakeAPI(t *testing.T) {
	s := fakeapi.Start(t, fakeapi.Config{})
	tests := []struct{ name, path, body string }{
		{"Chat", "/chat/completions", `{"model":"deepseek/deepseek-v3","messages":[{"role":"user","content":"Say \"hi\" <b>&</b>\n\tnow é 🙂"}]}`},
		{"ChatR1N2", "/chat/completions", `{"model":"deepseek/deepseek-r1","n":2,"messages":[{"role":"user","content":"Why?"}]}`},
		{"Completions", "/completions", `{"model":"m","prompt":["one","two"],"max_tokens":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertFastPath(t, fakeBody(t, s.URL()+tt.path, tt.body))
		})
	}
}

func TestScanResponseDeclines(t *testing.T) {
	tests := []struct{ name, body string }{
		{"UpperCaseKey", `{"ID":"x","choices":[]}`},
		{"UpperCaseNestedKey", `{"choices":[{"message":{"Content":"x"}}]}`},
		{"EscapedKey", `{"\u0069d":"x","choices":[]}`},
		{"FoldedKey", `{"choices":[{"meſſage":{"content":"x"}}]}`},
		{"NonASCIIKeyNotRead", `{"choices":[],"ñ":1}`},
		{"DuplicateID", `{"id":"a","id":"b","choices":[]}`},
		{"DuplicateUsage", `{"choices":[],"usage":{"prompt_tokens":1},"usage":{"total_tokens":2}}`},
		{"DuplicateChoices", `{"choices":[{"text":"a"}],"choices":[{"finish_reason":"stop"}]}`},
		{"FloatCount", `{"choices":[],"usage":{"prompt_tokens":1.0}}`},
		{"ExponentCount", `{"choices":[],"usage":{"total_tokens":1e3}}`},
		{"HugeCount", `{"choices":[],"usage":{"total_tokens":9223372036854775808}}`},
		{"StringCount", `{"choices":[],"usage":{"total_tokens":"3"}}`},
		{"InvalidUTF8Content", "{\"choices\":[{\"message\":{\"content\":\"\xff\"}}]}"},
		{"LaterChoiceNotObject", `{"choices":[{"text":"a"},1]}`},
		{"LaterChoiceTypeError", `{"choices":[{"text":"a"},{"text":1}]}`},
		{"ErrorWithChoices", `{"error":{"message":"x"},"choices":[{"text":"a"}]}`},
		{"ErrorObject", `{"error":{"code":429,"message":"slow"}}`},
		{"NoChoices", `{"id":"x"}`},
		{"NullChoices", `{"choices":null}`},
		{"TopNull", `null`},
		{"TooDeep", `{"choices":[],"x":` + strings.Repeat("[", maxScanDepth) + strings.Repeat("]", maxScanDepth) + `}`},
		{"TrailingGarbage", `{"choices":[]} x`},
		{"Truncated", openAIChat[:len(openAIChat)/2]},
		{"ControlInString", "{\"choices\":[],\"x\":\"a\tb\"}"},
		{"BadEscapeNotRead", `{"choices":[],"x":"\x41"}`},
		{"LeadingZero", `{"choices":[],"x":01}`},
		{"TrailingComma", `{"choices":[],}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if res, ok := scanResponse([]byte(tt.body)); ok {
				t.Errorf("scanResponse = %+v, want it declined", res)
			}
		})
	}
}

// assertFastPath checks that scanResponse handles body and agrees with
// encoding/json.
func assertFastPath(t *testing.T, body []byte) {
	t.Helper()
	got, ok := scanResponse(body)
	if !ok {
		t.Fatalf("scanResponse declined %s", body)
	}
	want, cerr := decodeResponse(body)
	if cerr != nil {
		t.Fatalf("decodeResponse: %v", cerr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scanResponse =\n%+v\nencoding/json\n%+v", got, want)
	}
}

// fakeBody returns the fake server's 200 answer to a request body.
func fakeBody(tb testing.TB, url, reqBody string) []byte {
	tb.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(reqBody))
	if err != nil {
		tb.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("POST %s: %s, %v: %s", url, resp.Status, err, body)
	}
	return bytes.TrimSpace(body)
}
