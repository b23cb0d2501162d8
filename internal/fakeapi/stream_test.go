package fakeapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestStreamChatExact(t *testing.T) {
	s := Start(t, Config{Now: fixedNow})
	res, got := stream(t, s, "/chat/completions", chatBody("m", "hi", `"stream":true`, `"stream_options":{"include_usage":true}`))
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	head := `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":`
	want := []string{
		head + `[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"logprobs":null}],"usage":null}`,
		head + `[{"index":0,"delta":{"content":"echo: "},"finish_reason":null,"logprobs":null}],"usage":null}`,
		head + `[{"index":0,"delta":{"content":"hi"},"finish_reason":null,"logprobs":null}],"usage":null}`,
		head + `[{"index":0,"delta":{},"finish_reason":"stop","logprobs":null}],"usage":null}`,
		head + `[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}`,
		`[DONE]`,
	}
	if strings.Join(got.data, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got.data, "\n"), strings.Join(want, "\n"))
	}
	if got.comments != 1 || got.err != nil {
		t.Errorf("comments %d, read error %v", got.comments, got.err)
	}
	st := waitIdle(t, s)
	if st.Served != 1 || st.Usage != (Usage{PromptTokens: 4, CompletionTokens: 2, TotalTokens: 6}) || st.ServedByKey["hi"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// chunk is the part of a stream event the assembly tests read.
type chunk struct {
	ID, Object string
	Choices    []struct {
		Index        int
		Text         *string
		FinishReason *string `json:"finish_reason"`
		Delta        struct {
			Content          *string
			ReasoningContent *string `json:"reasoning_content"`
		}
	}
	Usage *usageJSON
}

// assemble joins the deltas of a stream per choice index and checks that
// it ends with [DONE].
func assemble(t *testing.T, events []string) (content, reasoning map[int]string, finish map[int]string, usage *usageJSON) {
	t.Helper()
	content, reasoning, finish = map[int]string{}, map[int]string{}, map[int]string{}
	if len(events) == 0 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", events)
	}
	for _, ev := range events[:len(events)-1] {
		var c chunk
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		for _, ch := range c.Choices {
			if ch.Delta.ReasoningContent != nil {
				if content[ch.Index] != "" {
					t.Errorf("reasoning after content in %s", ev)
				}
				reasoning[ch.Index] += *ch.Delta.ReasoningContent
			}
			if ch.Delta.Content != nil {
				content[ch.Index] += *ch.Delta.Content
			}
			if ch.Text != nil {
				content[ch.Index] += *ch.Text
			}
			if ch.FinishReason != nil {
				finish[ch.Index] = *ch.FinishReason
			}
		}
		if c.Usage != nil {
			usage = c.Usage
		}
	}
	return content, reasoning, finish, usage
}

func TestStreamAssembles(t *testing.T) {
	long := "one two three four five six seven"
	tests := []struct {
		name, path, body       string
		content, reasoning     map[int]string
		completion, reasonToks int
	}{
		{"ReasoningChat", "/chat/completions",
			chatBody("deepseek/deepseek-r1", long, `"stream":true`, `"stream_options":{"include_usage":true}`),
			map[int]string{0: "echo: " + long}, map[int]string{0: "thinking about " + long}, 8 + 9, 9},
		{"ChatN2", "/chat/completions", chatBody("m", "a b", `"stream":true`, `"n":2`, `"stream_options":{"include_usage":true}`),
			map[int]string{0: "echo: a b", 1: "echo: a b"}, map[int]string{}, 6, 0},
		{"Completions", "/completions", `{"model":"m","prompt":["x y","z"],"stream":true,"stream_options":{"include_usage":true}}`,
			map[int]string{0: "echo: x y", 1: "echo: z"}, map[int]string{}, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, Config{})
			_, got := stream(t, s, tt.path, tt.body)
			content, reasoning, finish, usage := assemble(t, got.data)
			if !equalMaps(content, tt.content) || !equalMaps(reasoning, tt.reasoning) {
				t.Errorf("content %v reasoning %v, want %v %v", content, reasoning, tt.content, tt.reasoning)
			}
			for i := range tt.content {
				if finish[i] != "stop" {
					t.Errorf("choice %d finish %q", i, finish[i])
				}
			}
			if usage == nil || usage.CompletionTokens != tt.completion ||
				(tt.reasonToks > 0) != (usage.Details != nil) || usage.Details != nil && usage.Details.ReasoningTokens != tt.reasonToks {
				t.Errorf("usage %+v, want completion %d reasoning %d", usage, tt.completion, tt.reasonToks)
			}
		})
	}
}

func equalMaps(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestStreamWithoutUsageOption(t *testing.T) {
	s := Start(t, Config{})
	_, got := stream(t, s, "/completions", `{"model":"m","prompt":"x","stream":true}`)
	for _, ev := range got.data {
		if strings.Contains(ev, `"usage"`) {
			t.Errorf("usage without include_usage: %s", ev)
		}
	}
	if st := waitIdle(t, s); st.Served != 1 || st.Usage.TotalTokens != 4+2 {
		t.Errorf("stats %+v: usage is counted even when not sent", st)
	}
}

func TestStreamCutAfterChunks(t *testing.T) {
	s := Start(t, Config{Script: func(Call) Fault { return Fault{CutAfterChunks: 2} }})
	_, got := stream(t, s, "/chat/completions", chatBody("m", "a b c d", `"stream":true`))
	if len(got.data) != 2 || !errors.Is(got.err, io.ErrUnexpectedEOF) {
		t.Errorf("events %q, error %v; want 2 events then an unexpected EOF", got.data, got.err)
	}
	if st := waitIdle(t, s); st.Cut != 1 || st.Served != 0 || st.Status[200] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestStreamCutStreamRate(t *testing.T) {
	s := Start(t, Config{Faults: Faults{CutStream: 1, CutAfter: 3}})
	_, got := stream(t, s, "/chat/completions", chatBody("m", "a b c d", `"stream":true`))
	if len(got.data) != 3 || got.err == nil {
		t.Errorf("events %q, error %v; want 3 events then an error", got.data, got.err)
	}
	if res := mustPost(t, s, "/chat/completions", chatBody("m", "plain")); res.status != 200 || !json.Valid(res.body) {
		t.Errorf("CutStream hit a plain request: %d %s", res.status, res.body)
	}
}

func TestStreamBadJSON(t *testing.T) {
	s := Start(t, Config{Faults: Faults{BadJSON: 1}})
	_, got := stream(t, s, "/chat/completions", chatBody("m", "x", `"stream":true`))
	bad := 0
	for _, ev := range got.data {
		if ev != "[DONE]" && !json.Valid([]byte(ev)) {
			bad++
		}
	}
	if bad != 1 || got.data[len(got.data)-1] != "[DONE]" {
		t.Errorf("events %q: want exactly one malformed event and [DONE]", got.data)
	}
	if st := waitIdle(t, s); st.Served != 0 || st.Malformed != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestStreamKeepAliveOnlyEndsWithClient(t *testing.T) {
	s := Start(t, Config{Script: func(Call) Fault { return Fault{KeepAliveOnly: true} }})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/chat/completions",
		strings.NewReader(chatBody("m", "x", `"stream":true`)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := readSSE(res.Body)
	res.Body.Close()
	if len(got.data) != 0 || got.comments < 2 || !errors.Is(got.err, context.DeadlineExceeded) {
		t.Errorf("data %q, %d comments, error %v", got.data, got.comments, got.err)
	}
	if st := waitIdle(t, s); st.Cut != 1 || st.Served != 0 {
		t.Errorf("stats %+v", st)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("keep-alive stream outlived its client by %v", d)
	}
}

func TestStreamChunkIntervalCanceled(t *testing.T) {
	s := Start(t, Config{ChunkInterval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/chat/completions",
		strings.NewReader(chatBody("m", "x", `"stream":true`)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := readSSE(res.Body)
	res.Body.Close()
	if len(got.data) != 1 || got.err == nil {
		t.Errorf("events %q, error %v; want the first event, then the timeout", got.data, got.err)
	}
	if st := waitIdle(t, s); st.Cut != 1 || st.Served != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestStreamWords checks the long streams of Config.StreamWords: a word
// per event, reasoning and content each that long, usage counting them,
// and a plain answer unchanged.
func TestStreamWords(t *testing.T) {
	s := Start(t, Config{StreamWords: 52})
	_, got := stream(t, s, "/chat/completions",
		chatBody("deepseek/deepseek-r1", "a b", `"stream":true`, `"stream_options":{"include_usage":true}`))
	if n := len(got.data) - 1; n != 2*52+3 {
		t.Errorf("%d data events before [DONE], want %d", n, 2*52+3)
	}
	content, reasoning, _, usage := assemble(t, got.data)
	if w := strings.Fields(content[0]); len(w) != 52 || w[0] != "echo:" || w[3] != "echo:" {
		t.Errorf("content %q: want 52 words repeating the echo", content[0])
	}
	if w := strings.Fields(reasoning[0]); len(w) != 52 || w[0] != "thinking" || w[4] != "thinking" {
		t.Errorf("reasoning %q: want 52 words repeating the thought", reasoning[0])
	}
	if usage == nil || usage.CompletionTokens != 104 || usage.Details == nil || usage.Details.ReasoningTokens != 52 {
		t.Errorf("usage %+v, want 104 completion tokens, 52 of them reasoning", usage)
	}
	_, got = stream(t, s, "/chat/completions", chatBody("m", "a b", `"stream":true`, `"max_tokens":5`))
	if content, _, finish, _ := assemble(t, got.data); content[0] != "echo: a b echo: a" || finish[0] != "length" {
		t.Errorf("with max_tokens 5: content %q, finish %q", content[0], finish[0])
	}
	if res := mustPost(t, s, "/chat/completions", chatBody("m", "a b")); !strings.Contains(string(res.body), `"content":"echo: a b"`) {
		t.Errorf("plain answer %s: want it unchanged", res.body)
	}
}
