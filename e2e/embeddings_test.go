package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// embeddingModel is the model of the embeddings lines, priced by input only.
const embeddingModel = "text-embedding-3-small"

// mixedEmbeddings is a file of chat and embeddings lines, OpenAI Batch
// lines and bare bodies, with what each embeddings line sends (bare
// bodies lose their custom_id and metadata).
var mixedEmbeddings = []struct {
	line string
	sent string // the body sent, for an embeddings line; "" for chat
}{
	{`{"custom_id":"chat-env","method":"POST","url":"/v1/chat/completions","body":{"model":"deepseek/deepseek-v3","messages":[{"role":"user","content":"hello there"}]}}`, ""},
	{`{"custom_id":"emb-env","method":"POST","url":"/v1/embeddings","body":{"model":"text-embedding-3-small","input":["four words of text","two more"],"dimensions":4}}`,
		`{"model":"text-embedding-3-small","input":["four words of text","two more"],"dimensions":4}`},
	{`{"custom_id":"emb-bare","metadata":{"row":7},"model":"text-embedding-3-small","input":"the food was delicious","encoding_format":"base64"}`,
		`{"model":"text-embedding-3-small","input":"the food was delicious","encoding_format":"base64"}`},
	{`{"model":"deepseek/deepseek-v3","messages":[{"role":"user","content":"hi"}]}`, ""},
	{`{"custom_id":"emb-tokens","body":{"input":[[1,2,3],[4]],"model":"text-embedding-3-small","user":"u-1"}}`,
		`{"input":[[1,2,3],[4]],"model":"text-embedding-3-small","user":"u-1"}`},
}

// TestEmbeddingsRunMixed imports a file of chat and embeddings lines, runs
// it with --stream (which streams the chat lines only) and prices the
// embeddings model by input alone; status counts the embeddings' prompt
// tokens and no completion, and costs them; the openai export holds each
// embeddings answer exactly as the fake served it.
func TestEmbeddingsRunMixed(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, RecordBodies: true})
	var lines []any
	for _, l := range mixedEmbeddings {
		lines = append(lines, l.line)
	}
	file := writeLines(t, dir, "mixed.jsonl", lines...)
	db := filepath.Join(dir, "t.db")
	prices := []string{"--price", embeddingModel + "=0.02", "--price", "deepseek/deepseek-v3=0.27:1.10"}
	if res := runCLI(t, keyEnv(), append(runArgs(db, srv, file, "--stream", "-q"), prices...)...); res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	st := statusJSON(t, db, "mixed")
	// chat: "hello there" 2+3 prompt, 3 completion; "hi" 1+3 prompt, 2
	// completion. Embeddings: 6, 4 and 4 words (a token counts as one).
	checkUsage(t, st["usage"], 23, 5)
	models := map[string]map[string]any{}
	for _, m := range st["models"].([]any) {
		models[m.(map[string]any)["model"].(string)] = m.(map[string]any)
	}
	emb := models[embeddingModel]
	if emb == nil {
		t.Fatalf("status has no %s: %v", embeddingModel, st["models"])
	}
	checkUsage(t, emb["usage"], 14, 0)
	if cost, _ := emb["cost"].(float64); math.Abs(cost-14*0.02/1e6) > 1e-15 {
		t.Errorf("%s cost %v, want 14 tokens × 0.02 per million", embeddingModel, emb["cost"])
	}
	want := 14*0.02/1e6 + (9*0.27+5*1.10)/1e6
	if total, _ := st["cost"].(map[string]any)["total"].(float64); math.Abs(total-want) > 1e-15 {
		t.Errorf("total cost %v, want %v", st["cost"], want)
	}
	checkSentAsGiven(t, srv)
	checkExportedAsServed(t, srv, db, "mixed")
}

// checkUsage compares a status usage object with prompt and completion
// tokens.
func checkUsage(t *testing.T, u any, prompt, completion float64) {
	t.Helper()
	m, _ := u.(map[string]any)
	if m["prompt_tokens"] != prompt || m["completion_tokens"] != completion || m["total_tokens"] != prompt+completion {
		t.Errorf("usage %v, want %v prompt and %v completion tokens", u, prompt, completion)
	}
}

// checkSentAsGiven: each embeddings body went out byte for byte as the file
// gave it (no stream added by --stream, custom_id and metadata dropped).
func checkSentAsGiven(t *testing.T, srv *fakeapi.Server) {
	t.Helper()
	var sent []string
	for _, b := range srv.Bodies() {
		if bytes.Contains(b, []byte(embeddingModel)) {
			sent = append(sent, string(b))
		}
	}
	for _, l := range mixedEmbeddings {
		if l.sent != "" && !slices.Contains(sent, l.sent) {
			t.Errorf("%s was not sent as given; sent:\n%s", l.sent, strings.Join(sent, "\n"))
		}
	}
	if len(sent) != 3 {
		t.Errorf("%d embeddings bodies sent, want 3", len(sent))
	}
}

// checkExportedAsServed: the openai export's body of each embeddings line is
// byte for byte what the fake serves for its request body.
func checkExportedAsServed(t *testing.T, srv *fakeapi.Server, db, job string) {
	t.Helper()
	bodies := exportedBodies(t, db, job)
	for _, l := range mixedEmbeddings {
		if l.sent == "" {
			continue
		}
		id := customIDOf(t, l.line)
		if got, want := bodies[id], postEmbeddings(t, srv, l.sent); !bytes.Equal(got, want) {
			t.Errorf("%s: exported body\n%s\nwant what the fake served\n%s", id, got, want)
		}
	}
}

// exportedBodies maps each custom_id of the openai export to its
// response body's raw bytes.
func exportedBodies(t *testing.T, db, job string) map[string][]byte {
	t.Helper()
	out := mustCLI(t, nil, "--db", db, "export", "--format", "openai", job)
	bodies := map[string][]byte{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l struct {
			CustomID string `json:"custom_id"`
			Response struct {
				StatusCode int             `json:"status_code"`
				Body       json.RawMessage `json:"body"`
			} `json:"response"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("export line %s: %v", line, err)
		}
		if l.Response.StatusCode != 200 {
			t.Errorf("%s: status %d, want 200", l.CustomID, l.Response.StatusCode)
		}
		bodies[l.CustomID] = l.Response.Body
	}
	return bodies
}

func customIDOf(t *testing.T, line string) string {
	t.Helper()
	var l struct {
		CustomID string `json:"custom_id"`
	}
	if err := json.Unmarshal([]byte(line), &l); err != nil || l.CustomID == "" {
		t.Fatalf("line %s has no custom_id: %v", line, err)
	}
	return l.CustomID
}

// postEmbeddings asks the fake's embeddings endpoint for body's answer,
// which depends on nothing but the body.
func postEmbeddings(t *testing.T, srv *fakeapi.Server, body string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/embeddings", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
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

// embeddingLines are n embeddings requests whose input's JSON text is 19
// bytes, an estimate of 5 tokens (and no completion), which the fake
// answers with 2 (its words).
func embeddingLines(n int) []any {
	lines := make([]any, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"custom_id":"e-%03d","model":%q,"input":"abcdefgh %08d"}`, i, embeddingModel, i)
	}
	return lines
}

// TestEmbeddingsDryRun: the plan counts embeddings rows with their input
// as prompt tokens and no completion.
func TestEmbeddingsDryRun(t *testing.T) {
	file := writeLines(t, t.TempDir(), "e.jsonl", embeddingLines(4)...)
	out := mustCLI(t, nil, "import", "--dry-run", "--price", embeddingModel+"=0.02", file)
	if !regexp.MustCompile(`(?m)^/embeddings +` + embeddingModel + ` +4 +20 +0 +0\.0000\b`).MatchString(out) {
		t.Errorf("the plan has no row of 4 embeddings requests, 20 prompt tokens and no completion:\n%s", out)
	}
}

// TestEmbeddingsTokenBudget: --max-tokens reserves an embeddings request's
// input estimate and no completion, so the run spends nearly all of the
// budget before it stops with exit 5; a larger budget finishes the job,
// nothing asked twice.
func TestEmbeddingsTokenBudget(t *testing.T) {
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	dir := t.TempDir()
	file := writeLines(t, dir, "e.jsonl", embeddingLines(100)...)
	db := filepath.Join(dir, "e.db")
	res := runCLI(t, keyEnv(), append(runArgs(db, srv, file), "--max-tokens", "100", "-q")...)
	if res.Code != exitBudget {
		t.Fatalf("exit %d, want %d\n%s", res.Code, exitBudget, res.Stderr)
	}
	if !strings.Contains(res.Stderr, " may use 5 tokens, ") {
		t.Errorf("stderr does not say a request may use 5 tokens (its input, no completion):\n%s", res.Stderr)
	}
	st := statusJSON(t, db, "e")
	// Each answer uses 2 tokens and each reservation is 5: the run stops
	// once what is spent leaves less than 5.
	if used := st["usage"].(map[string]any)["total_tokens"].(float64); used > 100 || used < 96 {
		t.Errorf("spent %v tokens of a 100-token budget, want 96 to 100", used)
	}
	if s, p := count(t, st, "succeeded"), count(t, st, "pending"); s+p != 100 || s < 48 {
		t.Errorf("after the budget stop: %d succeeded, %d pending of 100", s, p)
	}
	if res := runCLI(t, keyEnv(), append(runArgs(db, srv, file), "--max-tokens", "1000000", "-q")...); res.Code != 0 {
		t.Fatalf("rerun with a larger budget: exit %d\n%s", res.Code, res.Stderr)
	}
	if s := settled(t, srv); s.Served != 100 || len(s.DuplicateKeys()) > 0 {
		t.Errorf("fake API: %d served, duplicates %v; want 100, none twice", s.Served, s.DuplicateKeys())
	}
}

// TestEmbeddingsCache: a second job of the same embeddings requests is
// answered from the cache, nothing sent, with the very bytes the first
// job received.
func TestEmbeddingsCache(t *testing.T) {
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	a := writeLines(t, dir, "a.jsonl", embeddingLines(20)...)
	if res := runCLI(t, keyEnv(), append(runArgs(db, srv, a), "-q")...); res.Code != 0 {
		t.Fatalf("run a: exit %d\n%s", res.Code, res.Stderr)
	}
	before := settled(t, srv).Calls
	b := writeLines(t, dir, "b.jsonl", embeddingLines(20)...)
	res := runCLI(t, keyEnv(), append(runArgs(db, srv, b), "--log-interval", "1h")...)
	if res.Code != 0 {
		t.Fatalf("run b: exit %d\n%s", res.Code, res.Stderr)
	}
	if calls := settled(t, srv).Calls - before; calls != 0 || !strings.Contains(res.Stderr, "job b: 20 requests answered from the cache") {
		t.Errorf("job b sent %d calls; want all 20 answered from the cache:\n%s", calls, res.Stderr)
	}
	if st := statusJSON(t, db, "b"); st["cached"] != 20.0 || count(t, st, "succeeded") != 20 {
		t.Errorf("status b: cached %v, succeeded %d; want 20 and 20", st["cached"], count(t, st, "succeeded"))
	}
	got, want := exportedBodies(t, db, "b"), exportedBodies(t, db, "a")
	for id, body := range want {
		if !bytes.Equal(got[id], body) || !bytes.Contains(body, []byte(`"embedding":[`)) {
			t.Errorf("%s: job b exported\n%s\nwant job a's\n%s", id, got[id], body)
		}
	}
}

// TestEmbeddingsFromText: a text file of one input per line becomes
// embeddings requests with --endpoint embeddings.
func TestEmbeddingsFromText(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, RecordBodies: true})
	file := writeFile(t, dir, "lines.txt", "the cat sat\non the mat\n")
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, keyEnv(), runArgs(db, srv, "--model", "text-embedding-3-small", "--endpoint", "embeddings", "-q", file)...)
	if res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	bodies := srv.Bodies()
	if len(bodies) != 2 || !strings.Contains(string(bodies[0])+string(bodies[1]), `"input":"the cat sat"`) {
		t.Errorf("sent %q, want two embeddings bodies with the lines as input", bodies)
	}
	st := statusJSON(t, db, "lines")
	if count(t, st, "succeeded") != 2 {
		t.Errorf("counts %v, want 2 succeeded", st["counts"])
	}
}
