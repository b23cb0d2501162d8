package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// vllmPlainBody is a non-streamed answer as vLLM (late 2025 on) writes it,
// with the usage counts some servers write as floats. The fake server
// answers it as it is: the test checks it is stored byte for byte.
const vllmPlainBody = `{"id":"chatcmpl-7c1e","object":"chat.completion","created":1762000000,"model":"Qwen/Qwen3-8B",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"It is 42.","refusal":null,"annotations":null,` +
	`"audio":null,"function_call":null,"tool_calls":[],"reasoning":"6 × 7 <= 42 & so on."},"logprobs":null,` +
	`"finish_reason":"stop","stop_reason":null,"token_ids":null}],"service_tier":null,"system_fingerprint":null,` +
	`"usage":{"prompt_tokens":20.0,"total_tokens":32.0,"completion_tokens":12.0,"prompt_tokens_details":null},` +
	`"prompt_logprobs":null,"prompt_token_ids":null,"kv_transfer_params":null}`

// TestAnswersVLLMKeptAsSent runs against a vLLM-style server, streamed and
// plain: the exported openai body keeps reasoning, stop_reason and
// service_tier, the flat export's reasoning_content is filled from
// message.reasoning, and float usage is recorded.
func TestAnswersVLLMKeptAsSent(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Style: fakeapi.StyleVLLM, FloatUsage: true,
		Script: func(c fakeapi.Call) fakeapi.Fault {
			if c.CustomKey == "prompt-plain" {
				return fakeapi.Fault{Status: 200, Body: vllmPlainBody}
			}
			return fakeapi.Fault{}
		}})
	r1 := map[string]any{"custom_id": "r1", "model": "deepseek/deepseek-r1", "stop": []any{"###"}, "service_tier": "flex",
		"messages": []any{map[string]any{"role": "user", "content": "prompt-r1"}}}
	streamed := writeLines(t, dir, "streamed.jsonl", r1)
	plain := writeLines(t, dir, "plain.jsonl", map[string]any{"custom_id": "p", "model": "Qwen/Qwen3-8B",
		"messages": []any{map[string]any{"role": "user", "content": "prompt-plain"}}})
	db := filepath.Join(dir, "t.db")
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--stream", streamed)...); res.Code != 0 {
		t.Fatalf("run --stream: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := runCLI(t, keyEnv(), runArgs(db, srv, plain)...); res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}

	body := exportJSONL(t, db, "streamed", "openai")[0]["response"].(map[string]any)["body"].(map[string]any)
	choice := body["choices"].([]any)[0].(map[string]any)
	msg := choice["message"].(map[string]any)
	if msg["reasoning"] != "thinking about prompt-r1" || msg["content"] != "echo: prompt-r1" ||
		choice["stop_reason"] != "###" || body["service_tier"] != "flex" {
		t.Errorf("streamed body lost vLLM's fields: %v", body)
	}
	if _, ok := msg["reasoning_content"]; ok {
		t.Errorf("streamed body has a reasoning_content vLLM did not send: %v", msg)
	}

	res := runCLI(t, nil, "--db", db, "export", "plain")
	if res.Code != 0 || !strings.Contains(res.Stdout, `"body":`+vllmPlainBody+`}`) {
		t.Errorf("plain body not kept byte for byte: exit %d\n%s", res.Code, res.Stdout)
	}

	for _, job := range []string{"streamed", "plain"} {
		flat := exportJSONL(t, db, job, "flat")[0]
		if r, _ := flat["reasoning_content"].(string); r == "" {
			t.Errorf("%s: flat reasoning_content is empty: %v", job, flat)
		}
		st := statusJSON(t, db, job)
		usage := st["usage"].(map[string]any)
		if usage["prompt_tokens"].(float64) <= 0 || usage["completion_tokens"].(float64) <= 0 || st["results_without_usage"].(float64) != 0 {
			t.Errorf("%s: float usage not recorded: %v, %v without usage", job, usage, st["results_without_usage"])
		}
	}
	if got := statusJSON(t, db, "plain")["usage"].(map[string]any)["total_tokens"].(float64); got != 32 {
		t.Errorf("plain total_tokens = %v, want 32", got)
	}
}

// TestAnswersEmptyKeyUnchanged runs with OPENAI_API_KEY=EMPTY, vLLM's
// convention, against answers that contain the word: they are stored
// unchanged, plain and streamed, while an error body that repeats it is
// still redacted.
func TestAnswersEmptyKeyUnchanged(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Script: func(c fakeapi.Call) fakeapi.Fault {
		if c.CustomKey == "prompt-bad EMPTY" {
			return fakeapi.Fault{Status: 400, Body: `{"error":{"message":"model EMPTY rejected the prompt"}}`}
		}
		return fakeapi.Fault{}
	}})
	env := map[string]string{"OPENAI_API_KEY": "EMPTY"}
	lines := []any{
		map[string]any{"custom_id": "a", "model": "m", "messages": []any{map[string]any{"role": "user", "content": "say EMPTY twice: EMPTY"}}},
		map[string]any{"custom_id": "b", "model": "m", "prompt": "EMPTY"},
		map[string]any{"custom_id": "bad", "model": "m", "messages": []any{map[string]any{"role": "user", "content": "prompt-bad EMPTY"}}},
	}
	db := filepath.Join(dir, "t.db")
	for _, mode := range []string{"plain", "streamed"} {
		file := writeLines(t, dir, mode+".jsonl", lines...)
		args := []string{file}
		if mode == "streamed" {
			args = []string{"--stream", file}
		}
		if res := runCLI(t, env, runArgs(db, srv, args...)...); res.Code != exitSomeFailed {
			t.Fatalf("%s: exit %d, want %d\n%s", mode, res.Code, exitSomeFailed, res.Stderr)
		}
		flat := exportJSONL(t, db, mode, "flat", "--errors", filepath.Join(dir, mode+"-errors.jsonl"))
		want := map[string]string{"a": "echo: say EMPTY twice: EMPTY", "b": "echo: EMPTY"}
		if len(flat) != len(want) {
			t.Fatalf("%s: %d results, want %d", mode, len(flat), len(want))
		}
		for _, l := range flat {
			if c := want[l["custom_id"].(string)]; l["content"] != c {
				t.Errorf("%s %s: content %q, want %q", mode, l["custom_id"], l["content"], c)
			}
		}
		res := runCLI(t, nil, "--db", db, "export", "--errors", filepath.Join(dir, mode+"-openai-errors.jsonl"), mode)
		if strings.Contains(res.Stdout, "[REDACTED]") || strings.Count(res.Stdout, "EMPTY") < 3 {
			t.Errorf("%s: answers changed:\n%s", mode, res.Stdout)
		}
		errs := string(mustRead(t, filepath.Join(dir, mode+"-errors.jsonl")))
		if strings.Contains(errs, "EMPTY") || !strings.Contains(errs, "[REDACTED]") {
			t.Errorf("%s: the key is not redacted from the error body:\n%s", mode, errs)
		}
	}
}

// TestAnswersLongThinkingIsNotAStall streams a model that thinks through vLLM's
// delta.reasoning for longer than --stall-timeout: each reasoning delta is
// progress, so no request is abandoned, retried or paid for twice.
func TestAnswersLongThinkingIsNotAStall(t *testing.T) {
	const n = 3
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Style: fakeapi.StyleVLLM, ChunkInterval: 150 * time.Millisecond})
	lines := make([]any, n)
	for i := range lines {
		l := chatLine(i)
		l["model"] = "deepseek/deepseek-r1"
		l["messages"] = []any{map[string]any{"role": "user", "content": "prompt-" + string(rune('0'+i)) + " think about this at length please"}}
		lines[i] = l
	}
	file := writeLines(t, dir, "think.jsonl", lines...)
	db := filepath.Join(dir, "t.db")
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--stream", "--stall-timeout", "400ms", file)...); res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	st := settled(t, srv)
	if st.Calls != n || st.Served != n || len(st.DuplicateKeys()) != 0 {
		t.Errorf("calls %d, served %d, twice %v; want each request sent once", st.Calls, st.Served, st.DuplicateKeys())
	}
	if errs, _ := statusJSON(t, db, "think")["errors"].([]any); len(errs) != 0 {
		t.Errorf("errors %v, want none", errs)
	}
	for _, l := range exportJSONL(t, db, "think", "flat") {
		if r, _ := l["reasoning_content"].(string); !strings.HasPrefix(r, "thinking about prompt-") {
			t.Errorf("reasoning_content = %q", r)
		}
	}
}
