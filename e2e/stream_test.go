package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
)

func TestStreamedR1AnswerLooksNonStreamed(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, RecordBodies: true})
	line := map[string]any{"custom_id": "r1", "model": "deepseek/deepseek-r1",
		"messages": []any{map[string]any{"role": "user", "content": "prompt-why"}}}
	own := map[string]any{"custom_id": "own-options", "model": "deepseek/deepseek-v3", "stream": true,
		"stream_options": map[string]any{"include_usage": false},
		"messages":       []any{map[string]any{"role": "user", "content": "prompt-own"}}}
	file := writeLines(t, dir, "r1.jsonl", line, own, `{"custom_id":"cmpl","model":"m","prompt":"prompt-c"}`)
	db := filepath.Join(dir, "t.db")
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--stream", file)...); res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	for _, b := range srv.Bodies() {
		s := string(b)
		if v, ok := jobs.Lookup(b, "stream"); !ok || string(v) != "true" {
			t.Errorf("body not streamed: %s", s)
		}
		if strings.Contains(s, "prompt-own") != strings.Contains(s, `"include_usage":false`) ||
			strings.Count(s, "stream_options") != 1 {
			t.Errorf("stream_options wrong in %s", s)
		}
	}
	lines := exportJSONL(t, db, "r1", "openai")
	body := lines[0]["response"].(map[string]any)["body"].(map[string]any)
	msg := body["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	if body["object"] != "chat.completion" || msg["content"] != "echo: prompt-why" ||
		!strings.Contains(msg["reasoning_content"].(string), "prompt-why") {
		t.Errorf("assembled body = %v", body)
	}
	usage := body["usage"].(map[string]any)
	if usage["completion_tokens_details"].(map[string]any)["reasoning_tokens"].(float64) <= 0 {
		t.Errorf("reasoning tokens not kept: %v", usage)
	}
	cmpl := lines[2]["response"].(map[string]any)["body"].(map[string]any)
	if cmpl["object"] != "text_completion" || cmpl["choices"].([]any)[0].(map[string]any)["text"] != "echo: prompt-c" {
		t.Errorf("assembled completion = %v", cmpl)
	}
	flat := exportJSONL(t, db, "r1", "flat")
	if flat[1]["usage"] != nil {
		t.Errorf("a stream without a usage chunk must say usage is unknown, got %v", flat[1]["usage"])
	}
	if u := flat[0]["usage"].(map[string]any); u["reasoning_tokens"].(float64) <= 0 {
		t.Errorf("flat usage = %v", u)
	}
	st := statusJSON(t, db, "r1")
	if ttft := st["ttft_ms"].(map[string]any); ttft["p50"].(float64) <= 0 {
		t.Errorf("time to first token not recorded: %v", ttft)
	}
}

func TestCutStreamIsRetried(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
		if c.CustomKey == "prompt-1" && c.Attempt == 1 {
			return fakeapi.Fault{CutAfterChunks: 2}
		}
		if c.CustomKey == "prompt-2" && c.Attempt == 1 {
			return fakeapi.Fault{KeepAliveOnly: true}
		}
		return fakeapi.Fault{}
	}})
	file := writeLines(t, dir, "cut.jsonl", chatLines(4)...)
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, keyEnv(), runArgs(db, srv, "--stream", "--stall-timeout", "300ms", file)...)
	if res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	flat := exportJSONL(t, db, "cut", "flat")
	if len(flat) != 4 {
		t.Fatalf("%d results, want 4", len(flat))
	}
	for i, l := range flat {
		if want := "echo: prompt-" + string(rune('0'+i)); l["content"] != want {
			t.Errorf("result %d content %q, want %q (a partial stream must never be recorded)", i, l["content"], want)
		}
	}
	st := statusJSON(t, db, "cut")
	classes := map[string]float64{}
	for _, e := range st["errors"].([]any) {
		m := e.(map[string]any)
		classes[m["class"].(string)] = m["count"].(float64)
	}
	if classes["bad_response"] != 1 || classes["timeout"] != 1 {
		t.Errorf("want one truncated stream and one stall, got %v", st["errors"])
	}
	var stalled string
	for _, e := range st["errors"].([]any) {
		if m := e.(map[string]any); m["class"] == "timeout" {
			stalled = m["example"].(string)
		}
	}
	if !strings.Contains(stalled, "stalled") {
		t.Errorf("stall message = %q", stalled)
	}
	if s := settled(t, srv); len(s.DuplicateKeys()) != 0 {
		t.Errorf("served twice: %v", s.DuplicateKeys())
	}
}
