package output

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	golden_ "github.com/llmbatch/llmbatch/internal/golden"

	"github.com/llmbatch/llmbatch/jobs"
)

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden_.Check(t, filepath.Join("testdata", name), got)
}

const chatRaw = `{"id":"chatcmpl-7f3a","object":"chat.completion","created":1735787045,"model":"deepseek/deepseek-r1","choices":[{"index":0,"message":{"role":"assistant","content":"Paris.","reasoning_content":"The capital of France is Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":40,"total_tokens":52,"completion_tokens_details":{"reasoning_tokens":31}},"x_score":1.50e0}`

const completionRaw = `{"id":"cmpl-91b2","object":"text_completion","created":1735787046,"model":"deepseek/deepseek-v3","choices":[{"index":0,"text":" <b>one</b> & two\n\tthree \u2028","finish_reason":"length","logprobs":null}]}`

const prettyRaw = "{\n  \"id\": \"chatcmpl-pretty\",\n  \"object\": \"chat.completion\",\n  \"choices\": [\n    {\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \"hi\\nthere\"}, \"finish_reason\": \"stop\"}\n  ],\n  \"usage\": {\"prompt_tokens\": 3, \"completion_tokens\": 2, \"total_tokens\": 5.0}\n}\n"

const badRequestBody = `{"error":{"message":"max_tokens must be at most 8192","type":"invalid_request_error","param":"max_tokens","code":null}}`

func req(id int64, customID string, st jobs.Status) jobs.Request {
	return jobs.Request{
		ID: id, JobID: 1, Line: int(id), CustomID: customID,
		Endpoint: jobs.EndpointChat, Model: "deepseek/deepseek-r1",
		Body: []byte(`{}`), Status: st, Attempts: 1,
	}
}

// fixtureRecords is one record of every kind the export distinguishes, in
// input order.
func fixtureRecords() []jobs.Record {
	chat := req(1, "chat-ok", jobs.StatusSucceeded)
	completion := req(2, "completion-ok", jobs.StatusSucceeded)
	completion.Endpoint, completion.Model = jobs.EndpointCompletions, "deepseek/deepseek-v3"
	meta := req(6, "with-metadata", jobs.StatusSucceeded)
	meta.Metadata = json.RawMessage(`{"split": "test", "idx":7,"weight":1.50}`)
	network := req(4, "network-down", jobs.StatusFailed)
	network.Metadata = json.RawMessage(`["a","b"]`)
	return []jobs.Record{
		{Request: chat, Result: &jobs.Result{
			RequestID: 1, StatusCode: 200, ResponseID: "chatcmpl-7f3a", ProviderRequestID: "req-abc123",
			Model: "deepseek/deepseek-r1", Raw: json.RawMessage(chatRaw),
			Content: "Paris.", ReasoningContent: "The capital of France is Paris.", FinishReason: "stop",
			Usage:   jobs.Usage{Known: true, PromptTokens: 12, CompletionTokens: 40, ReasoningTokens: 31, TotalTokens: 52},
			Latency: 2345 * time.Millisecond,
		}},
		{Request: completion, Result: &jobs.Result{
			RequestID: 2, StatusCode: 200, ResponseID: "cmpl-91b2", Model: "deepseek/deepseek-v3",
			Raw: json.RawMessage(completionRaw), Content: " <b>one</b> & two\n\tthree \u2028",
			FinishReason: "length", Latency: 812*time.Millisecond + 900*time.Microsecond,
		}},
		{Request: req(3, "bad-request", jobs.StatusFailed), Failure: &jobs.Failure{
			Class: jobs.ClassInvalidRequest, StatusCode: 400,
			Message: "max_tokens must be at most 8192", Body: []byte(badRequestBody), RequestID: "req-7c1e",
		}},
		{Request: network, Failure: &jobs.Failure{
			Class: jobs.ClassNetwork, Message: "dial tcp 10.0.0.1:443: connect: connection refused",
		}},
		{Request: req(5, "cancelled", jobs.StatusCancelled)},
		{Request: meta, Result: &jobs.Result{
			RequestID: 6, StatusCode: 200, ResponseID: "chatcmpl-meta", ProviderRequestID: "req-meta",
			Raw: json.RawMessage(`{"id":"chatcmpl-meta","choices":[]}`), FinishReason: "stop",
			Usage: jobs.Usage{Known: true, PromptTokens: 1, CompletionTokens: 0, CachedTokens: 1, TotalTokens: 1},
		}},
		{Request: req(7, "pretty-printed", jobs.StatusSucceeded), Result: &jobs.Result{
			RequestID: 7, StatusCode: 200, ResponseID: "chatcmpl-pretty", Model: "deepseek/deepseek-r1",
			Raw: json.RawMessage(prettyRaw), Content: "hi\nthere", FinishReason: "stop",
			Usage:   jobs.Usage{Known: true, PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5},
			Latency: 95 * time.Millisecond,
		}},
		{Request: req(8, "bad-gateway", jobs.StatusFailed), Failure: &jobs.Failure{
			Class: jobs.ClassServer, StatusCode: 502, Message: "HTTP 502 after 5 attempts",
			Body: []byte("<html>\r\n<b>502 Bad Gateway</b>\r\n</html>\r\n"),
		}},
		{Request: req(9, "server-empty", jobs.StatusFailed), Failure: &jobs.Failure{
			Class: jobs.ClassServer, StatusCode: 500, Message: "HTTP 500 after 5 attempts",
		}},
		{Request: req(10, "invalid-line", jobs.StatusFailed), Failure: &jobs.Failure{
			Class: jobs.ClassInvalidInput, Message: "in.jsonl:10: temperature must be at most 2",
		}},
		{Request: req(11, "still-pending", jobs.StatusPending)},
		{Request: req(12, "in-flight", jobs.StatusRunning)},
	}
}

var fixtureCreated = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// fixtureStats has two error classes and no usage; knownUsage adds usage.
func fixtureStats(knownUsage bool) jobs.Stats {
	s := jobs.Stats{
		Job: jobs.Job{
			ID: 1, Name: "eval-2025", Source: "data/eval.jsonl", State: jobs.JobActive,
			CreatedAt: fixtureCreated, Total: 1000,
		},
		Counts: map[jobs.Status]int{
			jobs.StatusPending: 120, jobs.StatusRunning: 8, jobs.StatusSucceeded: 850, jobs.StatusFailed: 22,
		},
		Attempts: 1043,
		Errors: []jobs.ClassCount{
			{Class: jobs.ClassRateLimited, Count: 163, Example: "Rate limit reached for deepseek/deepseek-r1:\tlimit 60 RPM,\nused 60. Please retry after 20s. This message is long enough that the status table has to cut it somewhere around here."},
			{Class: jobs.ClassInvalidRequest, Count: 22, Example: "max_tokens must be at most 8192"},
		},
		LatencyP50: 1234567 * time.Microsecond,
		LatencyP95: 8 * time.Second,
		TTFTP50:    420 * time.Millisecond,
		TTFTP95:    2100 * time.Millisecond,
	}
	if knownUsage {
		s.Usage = jobs.Usage{Known: true, PromptTokens: 10200, CompletionTokens: 48100, ReasoningTokens: 30050, CachedTokens: 4096, TotalTokens: 58300}
	}
	return s
}

const embeddingRaw = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255, -0.009327292,1.5e-3]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}`

// embeddingBase64Raw holds the float32s 1, -2.5 and 0.1, little-endian.
const embeddingBase64Raw = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPwAAIMDNzMw9"}],"model":"text-embedding-3-small","usage":{"prompt_tokens":3,"total_tokens":3}}`

// embeddingRecords are embeddings requests: a vector as numbers, one in
// base64, a failure and an answer without a vector.
func embeddingRecords() []jobs.Record {
	emb := func(id int64, customID string, st jobs.Status, body string) jobs.Request {
		r := req(id, customID, st)
		r.Endpoint, r.Model, r.Body = jobs.EndpointEmbeddings, "text-embedding-3-small", []byte(body)
		return r
	}
	result := func(id int64, raw string, tokens int64) *jobs.Result {
		return &jobs.Result{RequestID: id, StatusCode: 200, Model: "text-embedding-3-small", Raw: json.RawMessage(raw),
			Usage: jobs.Usage{Known: true, PromptTokens: tokens, TotalTokens: tokens}, Latency: 40 * time.Millisecond}
	}
	return []jobs.Record{
		{Request: emb(21, "emb-floats", jobs.StatusSucceeded, `{"model":"text-embedding-3-small","input":"The food was delicious"}`),
			Result: result(21, embeddingRaw, 5)},
		{Request: emb(22, "emb-base64", jobs.StatusSucceeded, `{"input":["one"],"model":"text-embedding-3-small","encoding_format":"base64"}`),
			Result: result(22, embeddingBase64Raw, 3)},
		{Request: emb(23, "emb-failed", jobs.StatusFailed, `{"model":"text-embedding-3-small","input":[[1,2],[3]]}`),
			Failure: &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "input is too long"}},
		{Request: emb(24, "emb-no-vector", jobs.StatusSucceeded, `{"model":"text-embedding-3-small","input":""}`),
			Result: result(24, `{"object":"list","data":[]}`, 0)},
	}
}

// datasetRecords are the records of a template job made with --samples 2:
// two dataset records sent twice each (one sample failed, one cancelled),
// and a record kept invalid at import, which has no sample.
func datasetRecords() []jobs.Record {
	const meta1 = `{"id": 1, "question": "What is 2 + 2?", "tags": ["math"], "score": 0.5, "ok": true, "status": "draft"}`
	const meta2 = `{"id": 2, "question": "Name a prime, \"quoted\"", "score": 1, "ok": false, "note": null}`
	const body1 = `{"model":"deepseek/deepseek-v3","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2 + 2?"}]}`
	const body2 = `{"model":"deepseek/deepseek-v3","messages":[{"role":"user","content":[{"type":"text","text":"Name a prime,"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"\"quoted\""}]}]}`
	sample := func(id int64, customID string, st jobs.Status, meta, body string) jobs.Request {
		r := req(id, customID, st)
		r.Model, r.Metadata, r.Body = "deepseek/deepseek-v3", json.RawMessage(meta), []byte(body)
		return r
	}
	answer := func(id int64, content string) *jobs.Result {
		return &jobs.Result{RequestID: id, StatusCode: 200, Model: "deepseek/deepseek-v3", Raw: json.RawMessage(`{}`),
			Content: content, FinishReason: "stop", Latency: 1500 * time.Millisecond,
			Usage: jobs.Usage{Known: true, PromptTokens: 9, CompletionTokens: 1, TotalTokens: 10}}
	}
	invalid := sample(5, "line-3", jobs.StatusFailed, `{"id": 3}`, `{"id": 3}`)
	invalid.Attempts = 0
	return []jobs.Record{
		{Request: sample(1, "q1#0", jobs.StatusSucceeded, meta1, body1), Result: answer(1, "4")},
		{Request: sample(2, "q1#1", jobs.StatusSucceeded, meta1, body1), Result: answer(2, "Four.")},
		{Request: sample(3, "q2#0", jobs.StatusFailed, meta2, body2),
			Failure: &jobs.Failure{Class: jobs.ClassRateLimited, StatusCode: 429, Message: "Rate limit reached, retry later"}},
		{Request: sample(4, "q2#1", jobs.StatusCancelled, meta2, body2)},
		{Request: invalid, Failure: &jobs.Failure{Class: jobs.ClassInvalidInput, Message: "data.jsonl:3: no field question"}},
	}
}
