package worker

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// assembleFile streams testdata/sse/name.sse through the reader and the
// assembler. Names starting with "completions" are /completions streams.
func assembleFile(t *testing.T, name string) ([]byte, *jobs.Result, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "sse", name+".sse"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	endpoint := jobs.EndpointChat
	if strings.HasPrefix(name, "completions") {
		endpoint = jobs.EndpointCompletions
	}
	a := newAssembler(endpoint)
	if err := readStream(newSSEReader(f, 1<<20), a, nil); err != nil {
		return nil, nil, err
	}
	return a.Result()
}

func TestAssembleGolden(t *testing.T) {
	tests := []struct {
		name string
		// What the first choice says, joined by hand from the .sse file.
		content, reasoning, finish string
		usage                      jobs.Usage
		wantClass                  jobs.ErrorClass // for a stream that must fail
	}{
		{name: "chat", content: `Hello, <world> & "you" — ünïcode ✓`, finish: "stop",
			usage: jobs.Usage{Known: true, PromptTokens: 12, CompletionTokens: 9, TotalTokens: 21, CachedTokens: 8}},
		{name: "completions", content: "Once upon a time", finish: "length",
			usage: jobs.Usage{Known: true, PromptTokens: 4, CompletionTokens: 4, TotalTokens: 8}},
		{name: "chat-n2", content: "Hello there", finish: "length",
			usage: jobs.Usage{Known: true, PromptTokens: 7, CompletionTokens: 6, TotalTokens: 13}},
		{name: "r1-reasoning", content: "The answer is **42**.", reasoning: "The user asks 6×7.\nThat is 42.", finish: "stop",
			usage: jobs.Usage{Known: true, PromptTokens: 15, CompletionTokens: 40, ReasoningTokens: 31, TotalTokens: 55}},
		{name: "tool-calls", finish: "tool_calls",
			usage: jobs.Usage{Known: true, PromptTokens: 80, CompletionTokens: 36, TotalTokens: 116}},
		{name: "completions-prompt-array", content: "one two", finish: "stop",
			usage: jobs.Usage{Known: true, PromptTokens: 6, CompletionTokens: 7, TotalTokens: 13}},
		{name: "no-usage", content: "Short answer.", finish: "stop"},
		{name: "chat-logprobs", content: "Yes<", finish: "stop",
			usage: jobs.Usage{Known: true, PromptTokens: 9, CompletionTokens: 2, TotalTokens: 11}},
		{name: "completions-logprobs", content: " Paris.", finish: "stop",
			usage: jobs.Usage{Known: true, PromptTokens: 6, CompletionTokens: 2, TotalTokens: 8}},
		{name: "vllm-reasoning", content: "It is 42.", reasoning: "The user asks 6×7.\nThat is <42> & no less.", finish: "stop",
			usage: jobs.Usage{Known: true, PromptTokens: 14, CompletionTokens: 26, TotalTokens: 40}},
		{name: "openrouter", content: "Four", reasoning: "Two plus two.", finish: "stop",
			usage: jobs.Usage{Known: true, PromptTokens: 9, CompletionTokens: 12, ReasoningTokens: 10, TotalTokens: 21}},
		{name: "error-midstream", wantClass: jobs.ClassServer},
		{name: "truncated", wantClass: jobs.ClassBadResponse},
		{name: "done-before-finish", wantClass: jobs.ClassBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, res, err := assembleFile(t, tt.name)
			if tt.wantClass != "" {
				checkStreamError(t, err, tt.wantClass, nil)
				checkGolden(t, tt.name, failureJSON(t, err))
				return
			}
			if err != nil {
				t.Fatalf("assemble: %v", err)
			}
			checkGolden(t, tt.name, indent(t, body))
			if res.Content != tt.content || res.ReasoningContent != tt.reasoning || res.FinishReason != tt.finish {
				t.Errorf("content, reasoning, finish = %q, %q, %q; want %q, %q, %q",
					res.Content, res.ReasoningContent, res.FinishReason, tt.content, tt.reasoning, tt.finish)
			}
			if res.Usage != tt.usage {
				t.Errorf("usage = %+v, want %+v", res.Usage, tt.usage)
			}
			if _, hasUsage := jobs.Lookup(body, "usage"); hasUsage != tt.usage.Known {
				t.Errorf("body has usage = %v, want %v", hasUsage, tt.usage.Known)
			}
			checkJoinedByHand(t, tt.name, body)
			if again, _, _ := assembleFile(t, tt.name); !bytes.Equal(again, body) {
				t.Errorf("a second assembly differs:\n%s\n%s", body, again)
			}
		})
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "sse", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n got: %s\nwant: %s", path, got, want)
	}
}

func indent(t *testing.T, body []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, body, "", "  "); err != nil {
		t.Fatalf("assembled body is not JSON: %v\n%s", err, body)
	}
	return append(b.Bytes(), '\n')
}

func failureJSON(t *testing.T, err error) []byte {
	t.Helper()
	var ce *CallError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *CallError", err)
	}
	b, _ := json.MarshalIndent(map[string]any{"class": ce.Class, "status_code": ce.StatusCode,
		"retryable": ce.Class.Disposition() == jobs.Retryable, "message": ce.Message, "body": string(ce.Body)}, "", "  ")
	return append(b, '\n')
}

// joined is one choice's text as a naive reading of the stream gives it:
// reasoning is reasoning_content, or reasoning (vLLM, OpenRouter).
type joined struct{ content, reasoning, finish string }

// checkJoinedByHand reads the .sse file the simplest way (one data line per
// event) and checks every choice of body against the deltas concatenated.
func checkJoinedByHand(t *testing.T, name string, body []byte) {
	t.Helper()
	want := joinByHand(t, name)
	var got struct {
		Choices []struct {
			Index   int
			Text    *string
			Message struct {
				Content          *string
				ReasoningContent string `json:"reasoning_content"`
				Reasoning        string
			}
			FinishReason string `json:"finish_reason"`
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Choices) != len(want) {
		t.Fatalf("%d choices, want %d", len(got.Choices), len(want))
	}
	for i, c := range got.Choices {
		if c.Index != i {
			t.Errorf("choice %d has index %d", i, c.Index)
		}
		g := joined{deref(c.Message.Content) + deref(c.Text), c.Message.ReasoningContent + c.Message.Reasoning, c.FinishReason}
		if g != want[c.Index] {
			t.Errorf("choice %d = %+v, want %+v", c.Index, g, want[c.Index])
		}
	}
}

func joinByHand(t *testing.T, name string) map[int]joined {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "sse", name+".sse"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[int]joined{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Index int
				Text  string
				Delta struct {
					Content          string
					ReasoningContent string `json:"reasoning_content"`
					Reasoning        string
				}
				FinishReason string `json:"finish_reason"`
			}
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		for _, ch := range c.Choices {
			j := out[ch.Index]
			j.content += ch.Delta.Content + ch.Text
			j.reasoning += ch.Delta.ReasoningContent + ch.Delta.Reasoning
			j.finish = cmp.Or(ch.FinishReason, j.finish)
			out[ch.Index] = j
		}
	}
	return out
}

// TestAssembleToolCalls checks the merge of tool-call deltas, with and
// without the index some providers leave out.
func TestAssembleToolCalls(t *testing.T) {
	tests := []struct {
		name   string
		deltas []string // tool_calls arrays
		want   string
	}{
		{"Indexed", []string{
			`[{"index":1,"id":"b","type":"function","function":{"name":"g","arguments":"{\"y\""}}]`,
			`[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":""}}]`,
			`[{"index":0,"function":{"arguments":"{}"}},{"index":1,"function":{"arguments":":2}"}}]`,
		}, `[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}},` +
			`{"id":"b","type":"function","function":{"name":"g","arguments":"{\"y\":2}"}}]`},
		{"WithoutIndex", []string{
			`[{"id":"a","function":{"name":"f","arguments":"{\"x\""}}]`,
			`[{"function":{"arguments":":1}"}}]`,
			`[{"id":"b","function":{"name":"g","arguments":"{}"}}]`,
		}, `[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}},` +
			`{"id":"b","type":"function","function":{"name":"g","arguments":"{}"}}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAssembler(jobs.EndpointChat)
			for _, d := range tt.deltas {
				mustAdd(t, a, `{"choices":[{"index":0,"delta":{"tool_calls":`+d+`}}]}`)
			}
			mustAdd(t, a, `{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`)
			body, _, err := a.Result()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := jobs.Lookup(body, "choices")
			if want := `"tool_calls":` + tt.want; !bytes.Contains(got, []byte(want)) {
				t.Errorf("choices = %s, want them to contain %s", got, want)
			}
		})
	}
}

func mustAdd(t *testing.T, a *assembler, data string) {
	t.Helper()
	if err := a.Add([]byte(data)); err != nil {
		t.Fatalf("Add(%s): %v", data, err)
	}
}

func TestAssembleFailures(t *testing.T) {
	const stop = `{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}`
	tests := []struct {
		name      string
		endpoint  jobs.Endpoint
		chunks    []string
		wantClass jobs.ErrorClass
		wantMsg   string
	}{
		{"NotJSON", jobs.EndpointChat, []string{`{"choices":[`, stop}, jobs.ClassBadResponse, "bad stream chunk"},
		{"WrongType", jobs.EndpointChat, []string{`{"choices":[{"index":"0"}]}`}, jobs.ClassBadResponse, "bad stream chunk"},
		{"NoChoices", jobs.EndpointChat, []string{`{"id":"x","choices":[]}`, `{"usage":{"prompt_tokens":1}}`}, jobs.ClassBadResponse, "no choices"},
		{"Nothing", jobs.EndpointCompletions, nil, jobs.ClassBadResponse, "no choices"},
		{"OneChoiceUnfinished", jobs.EndpointCompletions,
			[]string{`{"choices":[{"index":1,"text":"a"}]}`, `{"choices":[{"index":0,"text":"b","finish_reason":"stop"}]}`},
			jobs.ClassBadResponse, "choice 1"},
		{"ErrorAfterContent", jobs.EndpointChat, []string{stop, `{"error":{"message":"quota","code":402}}`}, jobs.ClassPayment, "quota"},
		{"ChunkNotAnObject", jobs.EndpointChat, []string{`[1]`, stop}, jobs.ClassBadResponse, "not a JSON object"},
		{"DeltaNotAnObject", jobs.EndpointChat, []string{`{"choices":[{"index":0,"delta":"x"}]}`}, jobs.ClassBadResponse, "delta"},
		{"FinishNotAString", jobs.EndpointChat, []string{`{"choices":[{"index":0,"finish_reason":1}]}`}, jobs.ClassBadResponse, "finish_reason"},
		{"ToolCallsNotAnArray", jobs.EndpointChat, []string{`{"choices":[{"index":0,"delta":{"tool_calls":{}}}]}`}, jobs.ClassBadResponse, "tool_calls"},
		{"ToolIndexFraction", jobs.EndpointChat, []string{`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0.5}]}}]}`}, jobs.ClassBadResponse, "index"},
		{"ErrorWithChoices", jobs.EndpointChat, []string{`{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}],"error":{"message":"late","code":500}}`},
			jobs.ClassServer, "late"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAssembler(tt.endpoint)
			var addErr error
			for _, c := range tt.chunks {
				if addErr = a.Add([]byte(c)); addErr != nil {
					break
				}
			}
			body, res, err := a.Result()
			if body != nil || res != nil {
				t.Errorf("Result = %s, %+v; want neither with an error", body, res)
			}
			if addErr != nil && err != addErr {
				t.Errorf("Result error %v, want Add's %v", err, addErr)
			}
			var ce *CallError
			if !errors.As(err, &ce) || ce.Class != tt.wantClass || !strings.Contains(ce.Message, tt.wantMsg) {
				t.Fatalf("error = %v, want class %s mentioning %q", err, tt.wantClass, tt.wantMsg)
			}
		})
	}
}

func TestAssembleKeepsFirstMetadata(t *testing.T) {
	a := newAssembler(jobs.EndpointChat)
	mustAdd(t, a, `{"id":"","created":null,"choices":[]}`)
	mustAdd(t, a, "  ")
	mustAdd(t, a, `{"id":"one","model":"m1","created":5,"system_fingerprint":"fp","choices":[{"index":0,"delta":{"role":"tool"}}]}`)
	mustAdd(t, a, `{"id":"two","model":"m2","created":6,"system_fingerprint":"fp2","choices":[{"index":0,"finish_reason":"stop"}]}`)
	// Where id and model were, keys that would shadow them: dropped.
	mustAdd(t, a, `{"ID":"three","Model":"m3","choices":[]}`)
	body, _, err := a.Result()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"one","object":"chat.completion","created":5,"model":"m1","system_fingerprint":"fp",` +
		`"choices":[{"index":0,"message":{"role":"tool","content":null},"finish_reason":"stop","logprobs":null}]}`
	if string(body) != want {
		t.Errorf("body = %s\nwant   %s", body, want)
	}
}

// FuzzAssemble feeds the lines of its input to an assembler as chunks: it
// must never panic, every failure must be classified, and a body it
// returns must be JSON with choices that parseResponse accepts as given.
func FuzzAssemble(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "sse", "*.sse"))
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if d, ok := strings.CutPrefix(l, "data: "); ok {
				lines = append(lines, d)
			}
		}
		f.Add([]byte(strings.Join(lines, "\n")), strings.HasPrefix(filepath.Base(path), "completions"))
	}
	f.Fuzz(func(t *testing.T, in []byte, completions bool) {
		endpoint := jobs.EndpointChat
		if completions {
			endpoint = jobs.EndpointCompletions
		}
		body, res, err := fuzzAssemble(t, endpoint, in)
		if err != nil {
			return
		}
		var v struct {
			Object  string            `json:"object"`
			Choices []json.RawMessage `json:"choices"`
		}
		if !json.Valid(body) || json.Unmarshal(body, &v) != nil || len(v.Choices) == 0 || v.Object == "" {
			t.Fatalf("assembled body is not a completion: %s", body)
		}
		if !bytes.Equal(res.Raw, body) {
			t.Fatalf("Raw = %s, want the body %s", res.Raw, body)
		}
		if again, _, _ := fuzzAssemble(t, endpoint, in); !bytes.Equal(again, body) {
			t.Fatalf("a second assembly differs:\n%s\n%s", body, again)
		}
	})
}

func fuzzAssemble(t *testing.T, endpoint jobs.Endpoint, in []byte) ([]byte, *jobs.Result, error) {
	a := newAssembler(endpoint)
	for _, line := range bytes.Split(in, []byte("\n")) {
		if a.Add(line) != nil {
			break
		}
	}
	body, res, err := a.Result()
	var ce *CallError
	if err != nil && (!errors.As(err, &ce) || ce.Class == "" || ce.Message == "") {
		t.Fatalf("unclassified error %v", err)
	}
	if (err == nil) != (body != nil && res != nil) {
		t.Fatalf("Result = %s, %v, %v", body, res, err)
	}
	return body, res, err
}

// TestAssembleKeepsVendorFields checks that every field a provider sends
// survives the assembly, under the rules of merge.go and assembler: text
// appends, identifiers, numbers and unknown choice fields keep their last
// value, top-level fields their first, null never replaces a value, and
// members we do not know follow ours in the order they first appeared.
func TestAssembleKeepsVendorFields(t *testing.T) {
	chunks := []string{
		`{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","tier":null,"obfuscation":"pad","choices":[{"index":0,` +
			`"delta":{"role":"assistant","content":"","extra":{"score":1,"note":"a"},"flag":true},"logprobs":null,"finish_reason":null,"seen":1}]}`,
		`{"id":"y","model":"m2","tier":"flex","provider":"P","obfuscation":"padpad","choices":[{"index":0,` +
			`"delta":{"role":"assistant","content":"Hi","extra":{"score":2,"note":"b"},"flag":null,"refusal":"no"},"seen":null}]}`,
		`{"id":"x","tier":"other","choices":[{"index":0,"delta":{"role":"","content":null,"refusal":"pe"},"finish_reason":"stop","seen":2,"stop_reason":null}]}`,
		`{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`,
	}
	a := newAssembler(jobs.EndpointChat)
	for _, c := range chunks {
		mustAdd(t, a, c)
	}
	body, res, err := a.Result()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi",` +
		`"extra":{"score":2,"note":"ab"},"flag":true,"refusal":"nope"},"finish_reason":"stop","logprobs":null,"seen":2,"stop_reason":null}],` +
		`"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3},"tier":"flex","provider":"P"}`
	if got := string(body); got != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}
	if res.Content != "Hi" || res.Usage.TotalTokens != 3 {
		t.Errorf("result = %+v", res)
	}
}

// TestAssembleIdentifiersAreNotText checks that a role, a tool call's id
// and its function's name repeated in every delta (as OpenRouter and
// Ollama send the role) are not concatenated, while the arguments are.
func TestAssembleIdentifiersAreNotText(t *testing.T) {
	a := newAssembler(jobs.EndpointChat)
	for range 3 {
		mustAdd(t, a, `{"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function",`+
			`"function":{"name":"f","arguments":"{}"}}]}}]}`)
	}
	mustAdd(t, a, `{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":"tool_calls"}]}`)
	body, _, err := a.Result()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := jobs.Lookup(body, "choices")
	want := `[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",` +
		`"function":{"name":"f","arguments":"{}{}{}"}}]},"finish_reason":"tool_calls","logprobs":null}]`
	if string(got) != want {
		t.Errorf("choices =\n%s\nwant\n%s", got, want)
	}
}

// TestAssembleProgress checks what counts as output for the stall guard
// and the time to first token: any delta that carries text, whatever the
// field's name, but not a role, an empty string, null or a vendor field.
func TestAssembleProgress(t *testing.T) {
	tests := []struct {
		name     string
		endpoint jobs.Endpoint
		chunk    string
		want     bool
	}{
		{"Content", jobs.EndpointChat, `{"choices":[{"index":0,"delta":{"content":"a"}}]}`, true},
		{"ReasoningContent", jobs.EndpointChat, `{"choices":[{"index":0,"delta":{"reasoning_content":"a"}}]}`, true},
		{"Reasoning", jobs.EndpointChat, `{"choices":[{"index":0,"delta":{"reasoning":"hmm"}}]}`, true},
		{"Refusal", jobs.EndpointChat, `{"choices":[{"index":0,"delta":{"refusal":"no"}}]}`, true},
		{"ToolArguments", jobs.EndpointChat, `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}`, true},
		{"Text", jobs.EndpointCompletions, `{"choices":[{"index":0,"text":"a"}]}`, true},
		{"RoleOnly", jobs.EndpointChat, `{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`, false},
		{"EmptyReasoning", jobs.EndpointChat, `{"choices":[{"index":0,"delta":{"reasoning":"","reasoning_content":null}}]}`, false},
		{"ToolName", jobs.EndpointChat, `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":""}}]}}]}`, false},
		{"VendorField", jobs.EndpointChat, `{"choices":[{"index":0,"delta":{"note":"x"},"stop_reason":"x"}]}`, false},
		{"UsageOnly", jobs.EndpointChat, `{"choices":[],"usage":{"prompt_tokens":1}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAssembler(tt.endpoint)
			mustAdd(t, a, tt.chunk)
			if got := a.Started(); got != tt.want {
				t.Errorf("Started = %v, want %v", got, tt.want)
			}
			if got, want := a.Outputs(), map[bool]int{true: 1}[tt.want]; got != want {
				t.Errorf("Outputs = %d, want %d", got, want)
			}
		})
	}
}

// TestAssembleKeepsUnreadableUsage checks that a stream whose usage cannot
// be read is kept, with its usage unknown, and that whole-number floats
// are read.
func TestAssembleKeepsUnreadableUsage(t *testing.T) {
	const stop = `{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}`
	tests := []struct {
		usage string
		want  jobs.Usage
	}{
		{`7`, jobs.Usage{}},
		{`{"prompt_tokens":"20"}`, jobs.Usage{}},
		{`{"prompt_tokens":20.0,"completion_tokens":2e1,"total_tokens":40}`,
			jobs.Usage{Known: true, PromptTokens: 20, CompletionTokens: 20, TotalTokens: 40}},
	}
	for _, tt := range tests {
		a := newAssembler(jobs.EndpointChat)
		mustAdd(t, a, stop)
		mustAdd(t, a, `{"choices":[],"usage":`+tt.usage+`}`)
		body, res, err := a.Result()
		if err != nil {
			t.Fatalf("usage %s: %v", tt.usage, err)
		}
		if got, _ := jobs.Lookup(body, "usage"); string(got) != tt.usage {
			t.Errorf("usage %s kept as %s", tt.usage, got)
		}
		if res.Usage != tt.want {
			t.Errorf("usage %s read as %+v, want %+v", tt.usage, res.Usage, tt.want)
		}
	}
}
