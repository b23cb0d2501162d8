package e2e

// The vectors of an embeddings job in every export but openai (which keeps
// the body as served, see embeddings_test.go): a list of float32s in
// parquet, a JSON array in csv, flat and merged; base64 vectors decoded.

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// embeddingsJob runs a job of embeddings lines (numbers and base64, one
// input and a list of them) beside chat lines, one of them refused with a
// 400, and returns the database and the job's name.
func embeddingsJob(t *testing.T, dir string) (db, job string) {
	t.Helper()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
		if c.CustomKey == "refused" {
			return fakeapi.Fault{Status: 400}
		}
		return fakeapi.Fault{}
	}})
	file := writeLines(t, dir, "vectors.jsonl",
		`{"custom_id":"floats","model":"text-embedding-3-small","input":"the food was delicious","dimensions":4}`,
		`{"custom_id":"base64","model":"text-embedding-3-small","input":"four words of text","encoding_format":"base64"}`,
		`{"custom_id":"list","url":"/v1/embeddings","body":{"model":"text-embedding-3-small","input":["first item","second"],"dimensions":3}}`,
		`{"custom_id":"refused","model":"text-embedding-3-small","input":"refused"}`,
		`{"custom_id":"chat","model":"deepseek/deepseek-v3","messages":[{"role":"user","content":"hi, \"you\"\nthere"}]}`,
	)
	db = filepath.Join(dir, "t.db")
	if res := runCLI(t, keyEnv(), runArgs(db, srv, file)...); res.Code != exitSomeFailed {
		t.Fatalf("run: exit %d, want %d\n%s", res.Code, exitSomeFailed, res.Stderr)
	}
	return db, "vectors"
}

// wantVectors are the vectors the fake serves for embeddingsJob's lines.
var wantVectors = map[string][]float32{
	"floats": fakeapi.Vector("the food was delicious", 4),
	"base64": fakeapi.Vector("four words of text", 8),
	"list":   fakeapi.Vector("first item", 3), // the first item's
}

func TestExportEmbeddingsVectors(t *testing.T) {
	dir := t.TempDir()
	db, job := embeddingsJob(t, dir)
	pq, csvPath := filepath.Join(dir, "v.parquet"), filepath.Join(dir, "v.csv")
	mustCLI(t, nil, "--db", db, "export", "--format", "parquet", "--with-request", "-o", pq, job)
	mustCLI(t, nil, "--db", db, "export", "--format", "csv", "--with-request", "-o", csvPath, job)
	_, rows := readParquetFile(t, pq)
	csvRows := readTabular(t, "csv", csvPath)
	flat := exportJSONL(t, db, job, "flat")
	merged := exportJSONL(t, db, job, "merged")
	if len(rows) != 5 || len(csvRows) != 5 || len(flat) != 5 || len(merged) != 5 {
		t.Fatalf("%d parquet rows, %d csv rows, %d flat and %d merged lines; want 5", len(rows), len(csvRows), len(flat), len(merged))
	}
	for i, r := range rows {
		id := r["custom_id"].(string)
		want := wantVectors[id]
		got, _ := r["embedding"].([]float32)
		if !slices.Equal(got, want) || (want == nil) != (r["embedding"] == nil) {
			t.Errorf("%s: parquet embedding %v, want %v", id, r["embedding"], want)
		}
		for name, text := range map[string]any{"csv": csvRows[i]["embedding"], "flat": flat[i]["embedding"], "merged": merged[i]["embedding"]} {
			if got := jsonVector(t, text); !slices.Equal(got, want) {
				t.Errorf("%s: %s embedding %v, want %v", id, name, text, want)
			}
		}
		if want != nil && (r["content"] != nil || r["prompt_tokens"] == nil || r["completion_tokens"] != int64(0)) {
			t.Errorf("%s: content %v, prompt_tokens %v, completion_tokens %v", id, r["content"], r["prompt_tokens"], r["completion_tokens"])
		}
	}
	byID := map[string]map[string]any{}
	for _, r := range rows {
		byID[r["custom_id"].(string)] = r
	}
	for id, prompt := range map[string]any{"floats": "the food was delicious", "list": nil, "refused": "refused", "chat": "hi, \"you\"\nthere"} {
		if got := byID[id]["prompt"]; got != prompt {
			t.Errorf("%s: prompt %#v, want %#v", id, got, prompt)
		}
	}
	if r := byID["refused"]; r["status"] != "failed" || r["error_code"] != "invalid_request" || r["embedding"] != nil {
		t.Errorf("refused: %v", r)
	}
}

// jsonVector reads a vector written as a JSON array (a string of it in
// csv); nil for null or an empty cell.
func jsonVector(t *testing.T, v any) []float32 {
	t.Helper()
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		if v == "" {
			return nil
		}
		var fs []float32
		if err := json.Unmarshal([]byte(v), &fs); err != nil {
			t.Fatalf("vector %q: %v", v, err)
		}
		return fs
	case []any:
		b, _ := json.Marshal(v)
		return jsonVector(t, string(b))
	}
	t.Fatalf("vector %s", strings.TrimSpace(fmt.Sprint(v)))
	return nil
}
