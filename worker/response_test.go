package worker

import (
	"reflect"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want jobs.Result // Raw is checked against body separately
	}{
		{
			name: "Chat",
			body: `{"id":"chatcmpl-1","object":"chat.completion","model":"deepseek/deepseek-v3",` +
				`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],` +
				`"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`,
			want: jobs.Result{ResponseID: "chatcmpl-1", Model: "deepseek/deepseek-v3", Content: "Hello", FinishReason: "stop",
				Usage: jobs.Usage{Known: true, PromptTokens: 5, CompletionTokens: 1, TotalTokens: 6}},
		},
		{
			name: "Completions",
			body: `{"id":"cmpl-2","object":"text_completion","model":"m","choices":[{"index":0,"text":" world","finish_reason":"length"}],` +
				`"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}`,
			want: jobs.Result{ResponseID: "cmpl-2", Model: "m", Content: " world", FinishReason: "length",
				Usage: jobs.Usage{Known: true, PromptTokens: 2, CompletionTokens: 1, TotalTokens: 3}},
		},
		{
			name: "R1Reasoning",
			body: `{"id":"r1","model":"deepseek/deepseek-r1","choices":[{"message":{"role":"assistant","content":"42",` +
				`"reasoning_content":"Let me think."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":30,` +
				`"total_tokens":40,"completion_tokens_details":{"reasoning_tokens":25}}}`,
			want: jobs.Result{ResponseID: "r1", Model: "deepseek/deepseek-r1", Content: "42", ReasoningContent: "Let me think.",
				FinishReason: "stop", Usage: jobs.Usage{Known: true, PromptTokens: 10, CompletionTokens: 30, ReasoningTokens: 25, TotalTokens: 40}},
		},
		{
			name: "OpenAICachedTokens",
			body: `{"id":"c","choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":100,"completion_tokens":1,` +
				`"total_tokens":101,"prompt_tokens_details":{"cached_tokens":64}}}`,
			want: jobs.Result{ResponseID: "c", Content: "x",
				Usage: jobs.Usage{Known: true, PromptTokens: 100, CompletionTokens: 1, CachedTokens: 64, TotalTokens: 101}},
		},
		{
			name: "DeepSeekPromptCacheHit",
			body: `{"id":"d","choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":100,"completion_tokens":1,` +
				`"total_tokens":101,"prompt_cache_hit_tokens":80,"prompt_cache_miss_tokens":20}}`,
			want: jobs.Result{ResponseID: "d", Content: "x",
				Usage: jobs.Usage{Known: true, PromptTokens: 100, CompletionTokens: 1, CachedTokens: 80, TotalTokens: 101}},
		},
		{
			name: "ZeroCachedDetailsKeepCacheHit",
			body: `{"id":"e","choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":9,"prompt_cache_hit_tokens":8,` +
				`"prompt_tokens_details":{"cached_tokens":0}}}`,
			want: jobs.Result{ResponseID: "e", Content: "x", Usage: jobs.Usage{Known: true, PromptTokens: 9, CachedTokens: 8, TotalTokens: 9}},
		},
		{
			name: "UsageWithoutTotal", // some local servers report only the parts
			body: `{"id":"p","choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":5,"completion_tokens":2}}`,
			want: jobs.Result{ResponseID: "p", Content: "x", Usage: jobs.Usage{Known: true, PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7}},
		},
		{
			name: "UsageZeroTotal",
			body: `{"id":"p","choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":0}}`,
			want: jobs.Result{ResponseID: "p", Content: "x", Usage: jobs.Usage{Known: true, PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7}},
		},
		{
			name: "NoUsage",
			body: `{"id":"n","choices":[{"message":{"content":"x"},"finish_reason":"stop"}]}`,
			want: jobs.Result{ResponseID: "n", Content: "x", FinishReason: "stop"},
		},
		{
			name: "NullUsage",
			body: `{"id":"n","choices":[{"message":{"content":"x"}}],"usage":null}`,
			want: jobs.Result{ResponseID: "n", Content: "x"},
		},
		{
			name: "KeepAliveLinesFirst",
			body: "\n\n{\"id\":\"k\",\"choices\":[{\"message\":{\"content\":\"late\"}}],\"usage\":{\"prompt_tokens\":1,\"total_tokens\":1}}",
			want: jobs.Result{ResponseID: "k", Content: "late", Usage: jobs.Usage{Known: true, PromptTokens: 1, TotalTokens: 1}},
		},
		{
			name: "NullContent",
			body: `{"id":"t","choices":[{"message":{"content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]}`,
			want: jobs.Result{ResponseID: "t", FinishReason: "tool_calls"},
		},
		{
			name: "EmptyChoices",
			body: `{"id":"z","choices":[]}`,
			want: jobs.Result{ResponseID: "z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cerr := parseResponse([]byte(tt.body))
			if cerr != nil {
				t.Fatalf("parseResponse: %v", cerr)
			}
			if string(got.Raw) != tt.body {
				t.Errorf("Raw = %q, want the body as received", got.Raw)
			}
			got.Raw = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("parseResponse =\n%+v\nwant\n%+v", *got, tt.want)
			}
			slow, cerr := decodeResponse([]byte(tt.body))
			if cerr != nil {
				t.Fatalf("decodeResponse: %v", cerr)
			}
			slow.Raw = nil
			if !reflect.DeepEqual(*slow, tt.want) {
				t.Errorf("decodeResponse =\n%+v\nwant\n%+v", *slow, tt.want)
			}
		})
	}
}

func TestParseResponseErrors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		class     jobs.ErrorClass
		status    int // -1: not checked
		keepBody  bool
		inMessage string
	}{
		{"InvalidJSON", `{"id":"x","choices":[{"mess`, jobs.ClassBadResponse, 0, false, "not valid JSON"},
		{"Empty", ``, jobs.ClassBadResponse, 0, false, "not valid JSON"},
		{"HTML", `<html>502 Bad Gateway</html>`, jobs.ClassBadResponse, 0, false, "not valid JSON"},
		{"NotAnObject", `[1,2,3]`, jobs.ClassBadResponse, 0, false, "not valid JSON"},
		{"TrailingGarbage", `{"choices":[]} x`, jobs.ClassBadResponse, 0, false, "not valid JSON"},
		{"ErrorRateLimited", `{"error":{"code":429,"message":"too many requests"}}`, jobs.ClassRateLimited, 429, true, "too many requests"},
		{"ErrorServer", `{"error":{"code":503,"message":"overloaded"}}`, jobs.ClassServer, 503, true, "overloaded"},
		{"ErrorAuth", `{"error":{"code":401,"message":"bad key"}}`, jobs.ClassAuth, 401, true, "bad key"},
		{"ErrorNonNumericCode", `{"error":{"code":"rate_limit_exceeded","message":"slow down"}}`, jobs.ClassBadResponse, 0, true, "slow down"},
		{"ErrorCodeOutOfRange", `{"error":{"code":20001,"message":"odd"}}`, jobs.ClassBadResponse, -1, true, "odd"},
		{"ErrorNoCode", `{"error":{"message":"something"}}`, jobs.ClassBadResponse, 0, true, "something"},
		{"MissingChoices", `{"id":"x","object":"chat.completion"}`, jobs.ClassBadResponse, 0, false, "no choices"},
		{"NullChoices", `{"id":"x","choices":null}`, jobs.ClassBadResponse, 0, false, "no choices"},
		{"EmptyObject", `{}`, jobs.ClassBadResponse, 0, false, "no choices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, cerr := parseResponse([]byte(tt.body))
			if cerr == nil {
				t.Fatalf("parseResponse = %+v, want a %s error", res, tt.class)
			}
			if res != nil {
				t.Errorf("parseResponse returned a result %+v with its error", res)
			}
			if cerr.Class != tt.class || (tt.status >= 0 && cerr.StatusCode != tt.status) {
				t.Errorf("class, status = %s, %d, want %s, %d", cerr.Class, cerr.StatusCode, tt.class, tt.status)
			}
			if !strings.Contains(cerr.Message, tt.inMessage) {
				t.Errorf("Message = %q, want it to contain %q", cerr.Message, tt.inMessage)
			}
			if tt.keepBody && string(cerr.Body) != tt.body {
				t.Errorf("Body = %q, want the error body kept", cerr.Body)
			}
			if cerr.RetryAfter != 0 {
				t.Errorf("RetryAfter = %v, want 0", cerr.RetryAfter)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	long := strings.Repeat("é", 400)
	tests := []struct{ name, body, want string }{
		{"OpenAI", `{"error":{"message":"Invalid model","type":"invalid_request_error"}}`, "Invalid model"},
		{"StringError", `{"error":"Model not found"}`, "Model not found"},
		{"EmptyMessage", `{"error":{"message":""}}`, `{"error":{"message":""}}`},
		{"PlainText", "  upstream timed out\n", "upstream timed out"},
		{"Truncated", long, strings.Repeat("é", 150) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorMessage([]byte(tt.body)); got != tt.want {
				t.Errorf("errorMessage = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseResponseKeepsEveryAnswer checks that a 2xx completion is kept
// whatever the types of the fields we read: usage that cannot be read is
// unknown, whole-number floats are counts, and vLLM's and OpenRouter's
// message.reasoning is the reasoning when reasoning_content is empty.
func TestParseResponseKeepsEveryAnswer(t *testing.T) {
	const choice = `"choices":[{"message":{"content":"x"},"finish_reason":"stop"}]`
	known := func(p, c, tot int64) jobs.Usage {
		return jobs.Usage{Known: true, PromptTokens: p, CompletionTokens: c, TotalTokens: tot}
	}
	tests := []struct {
		name, body string
		want       jobs.Usage
		reasoning  string
		fast       bool // the scanner reads it itself
	}{
		{"FloatCounts", `{` + choice + `,"usage":{"prompt_tokens":20.0,"completion_tokens":2e1,"total_tokens":4.0E1}}`, known(20, 20, 40), "", false},
		{"FloatZero", `{` + choice + `,"usage":{"prompt_tokens":-0.0,"completion_tokens":0e5}}`, known(0, 0, 0), "", false},
		{"LargestCount", `{` + choice + `,"usage":{"prompt_tokens":1099511627776}}`, known(1<<40, 0, 1<<40), "", true},
		{"StringCount", `{` + choice + `,"usage":{"prompt_tokens":"20","completion_tokens":3}}`, jobs.Usage{}, "", false},
		{"Fraction", `{` + choice + `,"usage":{"prompt_tokens":20.5}}`, jobs.Usage{}, "", false},
		{"Negative", `{` + choice + `,"usage":{"prompt_tokens":-1}}`, jobs.Usage{}, "", false},
		{"Absurd", `{` + choice + `,"usage":{"prompt_tokens":1099511627777}}`, jobs.Usage{}, "", false},
		{"Overflow", `{` + choice + `,"usage":{"prompt_tokens":1e400}}`, jobs.Usage{}, "", false},
		{"DetailsNotObject", `{` + choice + `,"usage":{"prompt_tokens":1,"completion_tokens_details":3}}`, jobs.Usage{}, "", false},
		{"UsageNotObject", `{` + choice + `,"usage":[1]}`, jobs.Usage{}, "", false},
		{"CountsNotReadIgnored", `{` + choice + `,"usage":{"prompt_tokens":1,"cost":"free","prompt_tokens_details":{"audio_tokens":-1}}}`, known(1, 0, 1), "", true},
		{"VLLMReasoning", `{"choices":[{"message":{"content":"x","reasoning":"think"},"finish_reason":"stop","stop_reason":null}]}`, jobs.Usage{}, "think", true},
		{"ReasoningContentWins", `{"choices":[{"message":{"content":"x","reasoning":"b","reasoning_content":"a"},"finish_reason":"stop"}]}`, jobs.Usage{}, "a", true},
		{"EmptyReasoningContent", `{"choices":[{"message":{"content":"x","reasoning_content":"","reasoning":"b"},"finish_reason":"stop"}]}`, jobs.Usage{}, "b", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, cerr := parseResponse([]byte(tt.body))
			if cerr != nil {
				t.Fatalf("parseResponse: %v", cerr)
			}
			if string(res.Raw) != tt.body || res.Content != "x" || res.FinishReason != "stop" {
				t.Errorf("Raw, Content, FinishReason = %s, %q, %q; want the body, x, stop", res.Raw, res.Content, res.FinishReason)
			}
			if res.Usage != tt.want || res.ReasoningContent != tt.reasoning {
				t.Errorf("usage, reasoning = %+v, %q; want %+v, %q", res.Usage, res.ReasoningContent, tt.want, tt.reasoning)
			}
			if _, ok := scanResponse([]byte(tt.body)); ok != tt.fast {
				t.Errorf("fast path taken = %v, want %v", ok, tt.fast)
			}
		})
	}
}

// TestParseResponseWrongTypes checks that fields of an unexpected type
// read as empty rather than losing the answer.
func TestParseResponseWrongTypes(t *testing.T) {
	body := `{"id":7,"model":null,"choices":[{"message":{"content":[{"type":"text","text":"hi"}],"reasoning_content":1},"finish_reason":2}]}`
	res, cerr := parseResponse([]byte(body))
	if cerr != nil {
		t.Fatalf("parseResponse: %v", cerr)
	}
	res.Raw = nil
	if !reflect.DeepEqual(*res, jobs.Result{}) {
		t.Errorf("parseResponse = %+v, want every field empty", *res)
	}
}
