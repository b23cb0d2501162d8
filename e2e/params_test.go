package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// TestEveryParameterArrivesAsGiven checks the raw bytes the server received
// against the line: every documented parameter, with the spelling of its
// numbers, key order and unknown fields, arrives exactly as written.
func TestEveryParameterArrivesAsGiven(t *testing.T) {
	var bias strings.Builder
	for i := 0; i < 500; i++ {
		if i > 0 {
			bias.WriteByte(',')
		}
		fmt.Fprintf(&bias, `"%d":%d`, 1000+i, i%201-100)
	}
	chat := `{"model":"deepseek/deepseek-r1","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"prompt-params","name":"ann"}],` +
		`"temperature":0.10,"top_p":1e-5,"top_k":-1,"min_p":0.05,"stop":["\n\n","END","###","<|x|>"],"n":2,` +
		`"presence_penalty":-1.50,"frequency_penalty":2,"repetition_penalty":1.05,"max_tokens":12345,` +
		`"seed":12345678901234567890,"zz_unknown":{"nested":[1,2.50,"x"]},"logit_bias":{` + bias.String() + `}}`
	completions := `{"prompt":[[1,2,3],[4,5]],"model":"m","max_tokens":7,"temperature":0,"echo":false}`
	dir := t.TempDir()
	file := writeLines(t, dir, "params.jsonl", `{"custom_id":"p1",`+chat[1:], completions)
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, RecordBodies: true})
	db := filepath.Join(dir, "t.db")
	if res := runCLI(t, keyEnv(), runArgs(db, srv, file)...); res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	got := srv.Bodies()
	if len(got) != 2 {
		t.Fatalf("server received %d bodies, want 2", len(got))
	}
	for _, want := range []string{chat, completions} {
		found := false
		for _, b := range got {
			found = found || bytes.Equal(b, []byte(want))
		}
		if !found {
			t.Errorf("no body arrived byte for byte as\n%s\ngot:\n%s\n%s", want, got[0], got[1])
		}
	}
	// Every choice is kept: two prompts give two choices.
	flat := exportJSONL(t, db, "params", "openai")
	var body struct {
		Choices []json.RawMessage `json:"choices"`
	}
	raw, _ := json.Marshal(flat[1]["response"].(map[string]any)["body"])
	if err := json.Unmarshal(raw, &body); err != nil || len(body.Choices) != 2 {
		t.Errorf("completions with two prompts kept %d choices (%v)", len(body.Choices), err)
	}
}
