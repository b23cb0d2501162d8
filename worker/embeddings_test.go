package worker

import (
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
)

// openAIEmbeddings is OpenAI's documented answer to an embeddings request.
const openAIEmbeddings = `{
  "object": "list",
  "data": [
    {"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292, -0.0028842222]}
  ],
  "model": "text-embedding-3-small",
  "usage": {"prompt_tokens": 8, "total_tokens": 8}
}`

func TestParseEmbeddings(t *testing.T) {
	tests := []struct {
		name string
		body string
		want jobs.Result // Raw is checked against body separately
		fast bool        // the scanner handles it
	}{
		{"OpenAI", openAIEmbeddings, jobs.Result{Model: "text-embedding-3-small",
			Usage: jobs.Usage{Known: true, PromptTokens: 8, TotalTokens: 8}}, true},
		{"Base64", `{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AAAAPwAAgL8="}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}`,
			jobs.Result{Model: "m", Usage: jobs.Usage{Known: true, PromptTokens: 2, TotalTokens: 2}}, true},
		{"WithID", `{"id":"embd-7","object":"list","data":[{"embedding":[1]}],"model":"m\u00e9","usage":{"prompt_tokens":1,"total_tokens":1}}`,
			jobs.Result{ResponseID: "embd-7", Model: "mé", Usage: jobs.Usage{Known: true, PromptTokens: 1, TotalTokens: 1}}, true},
		// A completion count, reasoning or cache details are not billed for
		// embeddings: the usage is the prompt's.
		{"CompletionDropped", `{"data":[{"embedding":[1]}],"usage":{"prompt_tokens":4,"completion_tokens":0,"total_tokens":4,"prompt_tokens_details":{"cached_tokens":2}}}`,
			jobs.Result{Usage: jobs.Usage{Known: true, PromptTokens: 4, TotalTokens: 4}}, true},
		{"OnlyTotal", `{"data":[],"usage":{"total_tokens":6}}`,
			jobs.Result{Usage: jobs.Usage{Known: true, PromptTokens: 6, TotalTokens: 6}}, true},
		{"OnlyPrompt", `{"data":[[]],"usage":{"prompt_tokens":6}}`,
			jobs.Result{Usage: jobs.Usage{Known: true, PromptTokens: 6, TotalTokens: 6}}, true},
		{"FloatCounts", `{"data":[{"embedding":[1]}],"usage":{"prompt_tokens":3.0,"total_tokens":3.0}}`,
			jobs.Result{Usage: jobs.Usage{Known: true, PromptTokens: 3, TotalTokens: 3}}, false},
		{"NoUsage", `{"data":[{"embedding":[1]}],"model":"m"}`, jobs.Result{Model: "m"}, true},
		{"NullUsage", `{"data":[{"embedding":[1]}],"usage":null}`, jobs.Result{}, true},
		{"BadUsage", `{"data":[{"embedding":[1]}],"usage":{"prompt_tokens":"8","total_tokens":8}}`, jobs.Result{}, false},
		{"NullError", `{"data":[{"embedding":[1]}],"error":null}`, jobs.Result{}, true},
		{"ErrorBesideItems", `{"data":[{"embedding":[1]}],"error":{"message":"partial"}}`, jobs.Result{}, false},
		{"DuplicateModel", `{"data":[],"model":"a","model":"b"}`, jobs.Result{Model: "b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cerr := parseEmbeddings([]byte(tt.body))
			if cerr != nil {
				t.Fatalf("parseEmbeddings: %v", cerr)
			}
			if string(got.Raw) != tt.body {
				t.Errorf("Raw = %s, want the body as received", got.Raw)
			}
			got.Raw, tt.want.Raw = nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("parseEmbeddings =\n%+v\nwant\n%+v", *got, tt.want)
			}
			if _, ok := scanEmbeddings([]byte(tt.body)); ok != tt.fast {
				t.Errorf("scanEmbeddings handled it: %v, want %v", ok, tt.fast)
			}
		})
	}
}

func TestParseEmbeddingsErrors(t *testing.T) {
	tests := []struct {
		name, body string
		class      jobs.ErrorClass
		msg        string
	}{
		{"NoData", `{"object":"list","model":"m","usage":{"prompt_tokens":1}}`, jobs.ClassBadResponse, "response has no data (not an embeddings list)"},
		{"NullData", `{"data":null}`, jobs.ClassBadResponse, "response has no data (not an embeddings list)"},
		{"DataObject", `{"data":{"embedding":[1]}}`, jobs.ClassBadResponse, "response has no data (not an embeddings list)"},
		{"AChatAnswer", `{"id":"c","choices":[{"message":{"content":"hi"}}]}`, jobs.ClassBadResponse, "response has no data (not an embeddings list)"},
		{"NotAnObject", `[1,2]`, jobs.ClassBadResponse, "response is not valid JSON: json: cannot unmarshal array into Go value of type worker.embeddingsResponse"},
		{"InvalidJSON", `{"data":[0.1,`, jobs.ClassBadResponse, "response is not valid JSON: unexpected end of JSON input"},
		{"ErrorNoData", `{"error":{"message":"overloaded","code":503}}`, jobs.ClassServer, "error in a 2xx response: overloaded"},
		{"ErrorEmptyData", `{"data":[],"error":{"message":"slow down","code":429}}`, jobs.ClassRateLimited, "error in a 2xx response: slow down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, cerr := parseEmbeddings([]byte(tt.body))
			if cerr == nil || res != nil {
				t.Fatalf("parseEmbeddings = %+v, %v; want a %s error", res, cerr, tt.class)
			}
			if cerr.Class != tt.class || cerr.Message != tt.msg {
				t.Errorf("error %s %q, want %s %q", cerr.Class, cerr.Message, tt.class, tt.msg)
			}
		})
	}
}

// embeddingsRequest is an embeddings request for the test model.
func embeddingsRequest(body string) *jobs.Request {
	return &jobs.Request{ID: 1, Endpoint: jobs.EndpointEmbeddings, Model: "text-embedding-3-small", Body: []byte(body)}
}

// TestClientEmbeddings: an embeddings request is posted as stored to
// BASE/embeddings, never as a stream even with --stream, and its answer is
// recorded byte for byte as the fake served it, with the input's words as
// prompt tokens, no completion, no content and no finish reason.
func TestClientEmbeddings(t *testing.T) {
	s := fakeapi.Start(t, fakeapi.Config{Key: testKey, RecordBodies: true})
	const body = `{"model":"text-embedding-3-small","input":["four words of text","two more"],"dimensions":16}`
	for _, stream := range []bool{false, true} {
		s.Reset()
		c := newTestClient(s.URL(), ClientOptions{Stream: stream})
		res, err := c.Call(t.Context(), embeddingsRequest(body))
		if err != nil {
			t.Fatalf("stream %v: Call: %v", stream, err)
		}
		if sent := s.Bodies(); len(sent) != 1 || string(sent[0]) != body {
			t.Errorf("stream %v: sent %q, want the stored body", stream, sent)
		}
		if want := served(t, s, body); !bytes.Equal(res.Raw, want) {
			t.Errorf("stream %v: Raw =\n%s\nwant what the fake serves\n%s", stream, res.Raw, want)
		}
		want := jobs.Usage{Known: true, PromptTokens: 6, TotalTokens: 6}
		if res.Usage != want || res.Content != "" || res.FinishReason != "" || res.Model != "text-embedding-3-small" ||
			res.StatusCode != 200 || res.ProviderRequestID == "" {
			t.Errorf("stream %v: result %+v, want usage %+v and no content", stream, res, want)
		}
	}
}

// served posts body to the fake's embeddings endpoint and returns its
// answer, which depends on nothing but the body.
func served(t *testing.T, s *fakeapi.Server, body string) []byte {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/embeddings", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the fake answered %d %s, %v", resp.StatusCode, b, err)
	}
	return b
}

// TestClientEmbeddingsNotAList: a 2xx that is not an embeddings list is a
// bad response with its body kept, retried like a chat answer without
// choices; an error status is classified as for chat.
func TestClientEmbeddingsNotAList(t *testing.T) {
	s := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
		if c.CustomKey == "limited" {
			return fakeapi.Fault{Status: 429}
		}
		return fakeapi.Fault{Status: 200, Body: `{"object":"list","model":"m"}`}
	}})
	c := newTestClient(s.URL(), ClientOptions{})
	res, err := c.Call(t.Context(), embeddingsRequest(`{"model":"m","input":"x"}`))
	if ce := mustCallError(t, res, err); ce.Class != jobs.ClassBadResponse || ce.Message != "response has no data (not an embeddings list)" ||
		ce.Class.Disposition() != jobs.Retryable {
		t.Errorf("error %+v, want a retryable bad_response for no data", ce.Failure)
	}
	res, err = c.Call(t.Context(), embeddingsRequest(`{"model":"m","input":"limited"}`))
	if ce := mustCallError(t, res, err); ce.Class != jobs.ClassRateLimited || ce.StatusCode != 429 {
		t.Errorf("error %+v, want rate_limited 429", ce.Failure)
	}
}

// TestEstimateEmbeddings: an embeddings body's estimate is its input as
// prompt and no completion; a chat or completions body with an "input" of
// its own is estimated as before.
func TestEstimateEmbeddings(t *testing.T) {
	tests := []struct {
		body               string
		prompt, completion int64
	}{
		{`{"model":"e","input":"abcdefgh","max_tokens":100}`, 3, 0}, // 10 bytes
		{`{"model":"e","input":["ab","cd"],"n":4}`, 3, 0},           // 11 bytes
		{`{"input":[1,2,3]}`, 2, 0},
		{`{"model":"m","prompt":"abcd","input":"long input ignored"}`, 2, DefaultMaxTokens},
		{`{"model":"m","messages":[],"input":"x"}`, 1, DefaultMaxTokens},
	}
	for _, tt := range tests {
		p, c := EstimateParts([]byte(tt.body))
		if p != tt.prompt || c != tt.completion {
			t.Errorf("EstimateParts(%s) = %d, %d; want %d, %d", tt.body, p, c, tt.prompt, tt.completion)
		}
		if got := EstimateTokens([]byte(tt.body)); got != tt.prompt+tt.completion {
			t.Errorf("EstimateTokens(%s) = %d, want %d", tt.body, got, tt.prompt+tt.completion)
		}
	}
}
