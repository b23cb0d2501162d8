package e2e

// An independent reader opens the csv and parquet exports: DuckDB, through
// its Node.js client (the npm package @duckdb/node-api, which ships
// DuckDB's binary through the registry). .ci/run installs it and sets
// LLMBATCH_REQUIRE_DUCKDB=1; elsewhere the test skips without it:
//
//	npm install --prefix "${XDG_CACHE_HOME:-$HOME/.cache}/llmbatch-duckdb" @duckdb/node-api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// duckdbScript runs the queries given as a JSON object {name: SQL} in argv
// and prints {name: rows} as JSON.
const duckdbScript = `
const { DuckDBInstance } = require(process.env.LLMBATCH_DUCKDB_API);
(async () => {
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  const out = {};
  for (const [name, sql] of Object.entries(JSON.parse(process.argv[2]))) {
    out[name] = (await con.runAndReadAll(sql)).getRowObjectsJson();
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(String(e)); process.exit(1); });
`

// duckdbAPI returns node and the path of @duckdb/node-api, found in
// $LLMBATCH_DUCKDB_DIR (default: llmbatch-duckdb in the user's cache
// directory). It skips the test when either is missing, unless
// LLMBATCH_REQUIRE_DUCKDB=1, which makes that a failure.
func duckdbAPI(t *testing.T) (node, api string) {
	t.Helper()
	dir := os.Getenv("LLMBATCH_DUCKDB_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err == nil {
			dir = filepath.Join(cache, "llmbatch-duckdb")
		}
	}
	api = filepath.Join(dir, "node_modules", "@duckdb", "node-api")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(api, "package.json"))
	}
	if err != nil {
		if os.Getenv("LLMBATCH_REQUIRE_DUCKDB") == "1" {
			t.Fatalf("DuckDB's Node.js client is required (LLMBATCH_REQUIRE_DUCKDB=1): %v", err)
		}
		t.Skipf("no node or no @duckdb/node-api in %s (npm install --prefix %s @duckdb/node-api): %v", dir, dir, err)
	}
	return node, api
}

// duckdb runs the queries in DuckDB and returns each one's rows, values as
// DuckDB's JSON gives them (big integers as strings).
func duckdb(t *testing.T, queries map[string]string) map[string][]map[string]any {
	t.Helper()
	node, api := duckdbAPI(t)
	script := filepath.Join(t.TempDir(), "query.js")
	if err := os.WriteFile(script, []byte(duckdbScript), 0o600); err != nil {
		t.Fatal(err)
	}
	q, err := json.Marshal(queries)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, script, string(q))
	cmd.Env = append(os.Environ(), "LLMBATCH_DUCKDB_API="+api)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb: %v\n%s", err, stderr.String())
	}
	var res map[string][]map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("duckdb printed %s: %v", out, err)
	}
	return res
}

// TestExportReadByDuckDB: DuckDB reads the parquet and csv exports of a
// job of chat and embeddings requests, some failed, with no options: the
// row count, the distinct ids, the token sums, the failures and each
// vector's length are the job's; the columns have their types.
func TestExportReadByDuckDB(t *testing.T) {
	duckdbAPI(t) // skip before building the job
	dir := t.TempDir()
	db, job := embeddingsJob(t, dir)
	chatDB, chatJob, flat := tabularRun(t, t.TempDir(), 30)
	files := map[string]string{}
	for _, f := range []string{"parquet", "csv"} {
		files[f] = filepath.Join(dir, "vectors."+f)
		mustCLI(t, nil, "--db", db, "export", "--format", f, "--with-request", "-o", files[f], job)
		files["chat-"+f] = filepath.Join(dir, "chat."+f)
		mustCLI(t, nil, "--db", chatDB, "export", "--format", f, "-o", files["chat-"+f], chatJob)
	}
	var prompt, total int64
	failed := 0
	for _, l := range flat {
		if u, ok := l["usage"].(map[string]any); ok {
			prompt += int64(u["prompt_tokens"].(float64))
			total += int64(u["total_tokens"].(float64))
		}
		if l["status"] == "failed" {
			failed++
		}
	}
	queries := map[string]string{}
	for _, f := range []string{"parquet", "csv"} {
		// A csv vector is JSON text; DuckDB casts it to a list.
		vec := "embedding"
		if f == "csv" {
			vec = "CAST(embedding AS FLOAT[])"
		}
		queries["chat-"+f] = fmt.Sprintf(`SELECT count(*) AS n, count(DISTINCT custom_id) AS ids, sum(prompt_tokens) AS prompt,
			sum(total_tokens) AS total, count(*) FILTER (WHERE status = 'failed') AS failed,
			count(*) FILTER (WHERE content LIKE 'echo: prompt-%%') AS answered FROM '%s'`, files["chat-"+f])
		queries["vectors-"+f] = fmt.Sprintf(`SELECT custom_id, len(%s) AS dims, prompt, status FROM '%s' ORDER BY custom_id`, vec, files[f])
		queries["types-"+f] = fmt.Sprintf(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '%s')`, files[f])
	}
	res := duckdb(t, queries)
	for _, f := range []string{"parquet", "csv"} {
		want := map[string]any{"n": "30", "ids": "30", "prompt": strconv.FormatInt(prompt, 10),
			"total": strconv.FormatInt(total, 10), "failed": strconv.Itoa(failed), "answered": strconv.Itoa(30 - failed)}
		if got := res["chat-"+f]; len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
			t.Errorf("%s: DuckDB read %v, want %v", f, got, want)
		}
		wantVec := []string{
			"base64 8 four words of text succeeded", "chat <nil> hi, \"you\"\nthere succeeded",
			"floats 4 the food was delicious succeeded", "list 3 <nil> succeeded", "refused <nil> refused failed",
		}
		var got []string
		for _, r := range res["vectors-"+f] {
			got = append(got, fmt.Sprint(r["custom_id"], " ", r["dims"], " ", r["prompt"], " ", r["status"]))
		}
		if fmt.Sprint(got) != fmt.Sprint(wantVec) {
			t.Errorf("%s: DuckDB read the vectors as\n%q\nwant\n%q", f, got, wantVec)
		}
	}
	types := map[string]string{}
	for _, r := range res["types-parquet"] {
		types[r["column_name"].(string)] = r["column_type"].(string)
	}
	for col, want := range map[string]string{"custom_id": "VARCHAR", "prompt_tokens": "BIGINT", "latency_ms": "BIGINT",
		"embedding": "FLOAT[]", "metadata": "VARCHAR", "attempts": "BIGINT"} {
		if types[col] != want {
			t.Errorf("parquet column %s is %s in DuckDB, want %s", col, types[col], want)
		}
	}
	csvTypes := map[string]string{}
	for _, r := range res["types-csv"] {
		csvTypes[r["column_name"].(string)] = r["column_type"].(string)
	}
	if csvTypes["prompt_tokens"] != "BIGINT" || csvTypes["custom_id"] != "VARCHAR" {
		t.Errorf("csv columns as DuckDB sniffs them: %v", csvTypes)
	}
}
