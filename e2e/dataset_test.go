package e2e

// End-to-end tests of datasets: templates over JSONL, CSV and text, the
// merged export, --samples across a SIGKILL, and the dedup cache across jobs.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// datasetRecords are JSONL records whose bytes the merged export must give
// back: nested objects, unicode (raw and escaped), numbers spelled in ways a
// decode and re-encode would change, odd spacing.
var datasetRecords = []string{
	`{"id": 17, "question": "What is the capital of France?", "meta": {"source": "geo", "tags": ["capital", {"deep": [1.50, -0.0, 1e-7]}]}, "weight": 1.0}`,
	`{"id":"q-18","question":"Combien font 7 × 6 ?","meta":{"source":"math","none":null},"weight":12345678901234567890}`,
	`{ "id" : 19 , "question" : "caf\u00e9 \"quoted\" <b>&</b> \ud83d\ude00", "meta" : { } , "weight" : 2E3 }`,
}

func TestDatasetJSONLTemplateAndMergedExport(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, RecordBodies: true})
	data := writeFile(t, dir, "questions.jsonl", "\xef\xbb\xbf"+strings.Join(datasetRecords, "\r\n")+"\r\n\r\n")
	tmpl := writeFile(t, dir, "q.tmpl", "Q{{.id}}: {{.question}}\n")
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, keyEnv(), runArgs(db, srv, "--template", tmpl, "--model", "deepseek/deepseek-v3", "--id-field", "id",
		"--system", "Be brief.", "--param", "temperature=0.7", "--param", `stop=["\n\n","END"]`, "--param", "max_tokens=64", data)...)
	if res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	bodies := map[string]bool{}
	for _, b := range srv.Bodies() {
		bodies[string(b)] = true
	}
	for _, q := range []string{`Q17: What is the capital of France?`, `Qq-18: Combien font 7 × 6 ?`, `Q19: café \"quoted\" <b>&</b> 😀`} {
		want := `{"model":"deepseek/deepseek-v3","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"` + q +
			`"}],"temperature":0.7,"stop":["\n\n","END"],"max_tokens":64}`
		if !bodies[want] {
			t.Errorf("the server did not get\n%s\ngot %q", want, srv.Bodies())
		}
	}
	res = runCLI(t, nil, "--db", db, "export", "--format", "merged", "questions")
	if res.Code != 0 {
		t.Fatalf("export: exit %d\n%s", res.Code, res.Stderr)
	}
	lines := strings.Split(strings.TrimSuffix(res.Stdout, "\n"), "\n")
	if len(lines) != len(datasetRecords) {
		t.Fatalf("%d merged lines, want %d:\n%s", len(lines), len(datasetRecords), res.Stdout)
	}
	for i, l := range lines {
		rec := strings.TrimSpace(datasetRecords[i])
		own := strings.TrimSuffix(rec, "}")
		if !strings.HasPrefix(l, own) {
			t.Errorf("line %d does not keep the record byte for byte:\n got %s\nwant %s…", i, l, own)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if a, _ := m["answer"].(string); !strings.HasPrefix(a, "echo: Q") || m["status"] != "succeeded" ||
			m["reasoning"] != "" || m["usage"] == nil {
			t.Errorf("line %d: answer %v, status %v, reasoning %v, usage %v", i, m["answer"], m["status"], m["reasoning"], m["usage"])
		}
	}
	// The custom_ids come from --id-field.
	flat := exportJSONL(t, db, "questions", "flat")
	for i, want := range []string{"17", "q-18", "19"} {
		if flat[i]["custom_id"] != want {
			t.Errorf("custom_id %d = %v, want %s", i, flat[i]["custom_id"], want)
		}
	}
	// Other field names, and one left out.
	res = runCLI(t, nil, "--db", db, "export", "--format", "merged", "--answer-field", "model_answer",
		"--reasoning-field", "", "--usage-field", "", "--status-field", "state", "questions")
	first := strings.SplitN(res.Stdout, "\n", 2)[0]
	if res.Code != 0 || !strings.HasSuffix(first, `,"model_answer":"echo: Q17: What is the capital of France?","state":"succeeded"}`) {
		t.Errorf("export with other field names: exit %d, first line %s\n%s", res.Code, first, res.Stderr)
	}
	res = runCLI(t, nil, "--db", db, "export", "--format", "merged", "--answer-field", "question", "questions")
	if res.Code != exitError || !strings.Contains(res.Stderr, `the record already has a field "question"; give the answer another name with --answer-field`) {
		t.Errorf("export over a record's own field: exit %d\n%s", res.Code, res.Stderr)
	}
}

// topicsCSV is the CSV of the worked example in docs/datasets.md.
const topicsCSV = "topic,level\r\nphotosynthesis,beginner\r\n\"black holes, and why light cannot escape\",expert\r\nTCP handshakes,intermediate\r\n"

const qaTemplate = `Write one {{.level}}-level exam question about {{.topic}}, then answer it.
Reply as JSON: {"question": "...", "answer": "..."}
`

func TestDatasetCSVTemplate(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, RecordBodies: true})
	data := writeFile(t, dir, "topics.csv", topicsCSV)
	tmpl := writeFile(t, dir, "qa.tmpl", qaTemplate)
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, keyEnv(), runArgs(db, srv, "--template", tmpl, "--model", "deepseek/deepseek-v3",
		"--param", "temperature=0.8", "--param", `response_format={"type":"json_object"}`, data)...)
	if res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	if got := len(srv.Bodies()); got != 3 {
		t.Fatalf("%d calls, want 3", got)
	}
	want := `{"model":"deepseek/deepseek-v3","messages":[{"role":"user","content":"Write one expert-level exam question about black holes, and why light cannot escape, then answer it.\nReply as JSON: {\"question\": \"...\", \"answer\": \"...\"}"}],"temperature":0.8,"response_format":{"type":"json_object"}}`
	found := false
	for _, b := range srv.Bodies() {
		found = found || string(b) == want
	}
	if !found {
		t.Errorf("no call had the body\n%s\ngot %q", want, srv.Bodies())
	}
	res = runCLI(t, nil, "--db", db, "export", "--format", "merged", "topics")
	lines := strings.Split(strings.TrimSuffix(res.Stdout, "\n"), "\n")
	if res.Code != 0 || len(lines) != 3 {
		t.Fatalf("export: exit %d, %d lines\n%s", res.Code, len(lines), res.Stderr)
	}
	if !strings.HasPrefix(lines[1], `{"topic":"black holes, and why light cannot escape","level":"expert","answer":"echo: Write one expert`) {
		t.Errorf("merged CSV row: %s", lines[1])
	}
	if ids := exportJSONL(t, db, "topics", "flat"); ids[2]["custom_id"] != "row-3" {
		t.Errorf("CSV custom_id = %v, want row-3", ids[2]["custom_id"])
	}
}

func TestDatasetTextLines(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	data := writeFile(t, dir, "prompts.txt", "What is 2 + 2?\n\nName a prime > 10.\n")
	db := filepath.Join(dir, "t.db")
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--model", "m", data)...); res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	res := runCLI(t, nil, "--db", db, "export", "--format", "merged", "--reasoning-field", "", "--usage-field", "", "prompts")
	want := `{"text":"What is 2 + 2?","answer":"echo: What is 2 + 2?","status":"succeeded"}` + "\n" +
		`{"text":"Name a prime > 10.","answer":"echo: Name a prime > 10.","status":"succeeded"}` + "\n"
	if res.Stdout != want {
		t.Errorf("merged export:\n%s\nwant\n%s", res.Stdout, want)
	}
}

func TestDatasetTemplateErrors(t *testing.T) {
	dir := t.TempDir()
	data := writeFile(t, dir, "d.jsonl", `{"question":"a","lang":"en"}`+"\n"+`{"question":"b"}`+"\n")
	missing := writeFile(t, dir, "missing.tmpl", "Answer in {{.lang}}: {{.question}}")
	broken := writeFile(t, dir, "broken.tmpl", "Answer:\n{{.question")
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, keyEnv(), "--db", db, "import", "--template", missing, "--model", "m", data)
	want := data + `:2: template ` + missing + `:1:12: executing "` + missing + `" at <.lang>: map has no entry for key "lang"`
	if res.Code != exitError || !strings.Contains(res.Stderr, want) || !strings.Contains(res.Stderr, "nothing was imported") {
		t.Errorf("import with a failing template: exit %d\n%s\nwant it to contain\n%s", res.Code, res.Stderr, want)
	}
	res = runCLI(t, keyEnv(), "--db", db, "import", "--template", broken, "--model", "m", data)
	if want := "--template " + broken + ":2: unclosed action"; res.Code != exitError || !strings.Contains(res.Stderr, want) {
		t.Errorf("import with a template that does not parse: exit %d\n%s\nwant %s", res.Code, res.Stderr, want)
	}
	if res := runCLI(t, nil, "--db", db, "jobs"); strings.Contains(res.Stdout, "d ") {
		t.Errorf("a job was imported:\n%s", res.Stdout)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", "m", data}, "d.jsonl:1: no \"messages\""},
		{[]string{"--param", "temperature=0.5", "--model", "m", data}, "--system, --param, --endpoint and --id-field shape requests made from a dataset"},
		{[]string{"--template", missing, "--param", "temperature=9", data}, `--param temperature=9: "temperature" must be a number from 0 to 2, got 9`},
		{[]string{"--template", missing, "--endpoint", "images", data}, `--endpoint "images": want chat, completions or embeddings`},
		{[]string{"--samples", "0", data}, "--samples must be at least 1"},
		{[]string{"--input-format", "xml", data}, `unknown input format "xml"`},
		{[]string{"--input-format", "csv", data}, "a csv dataset needs --template"},
	} {
		res := runCLI(t, keyEnv(), append([]string{"--db", db, "import"}, tc.args...)...)
		if res.Code != exitError || !strings.Contains(res.Stderr, tc.want) {
			t.Errorf("import %v: exit %d\n%s\nwant %s", tc.args, res.Code, res.Stderr, tc.want)
		}
	}
}

// TestDatasetChangedTemplateIsAChangedJob runs a dataset, then edits the
// template: the same job name is refused, as for a changed file.
func TestDatasetChangedTemplateIsAChangedJob(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	data := writeFile(t, dir, "topics.csv", topicsCSV)
	tmpl := writeFile(t, dir, "qa.tmpl", qaTemplate)
	db := filepath.Join(dir, "t.db")
	args := runArgs(db, srv, "--template", tmpl, "--model", "m", data)
	if res := runCLI(t, keyEnv(), args...); res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	calls := srv.Stats().Calls
	if res := runCLI(t, keyEnv(), args...); res.Code != 0 || srv.Stats().Calls != calls {
		t.Fatalf("rerun of an unchanged dataset: exit %d, %d new calls\n%s", res.Code, srv.Stats().Calls-calls, res.Stderr)
	}
	writeFile(t, dir, "qa.tmpl", qaTemplate+"Be concise.\n")
	res := runCLI(t, keyEnv(), args...)
	if res.Code != exitError || !strings.Contains(res.Stderr, `job "topics" was imported from different content`) {
		t.Errorf("rerun with a changed template: exit %d\n%s", res.Code, res.Stderr)
	}
	// A flag that shapes what is sent is refused by name, before the file
	// is even compared.
	res = runCLI(t, keyEnv(), runArgs(db, srv, "--template", tmpl, "--model", "m", "--samples", "2", data)...)
	if res.Code != exitError || !strings.Contains(res.Stderr, `--samples: (not set) → "2"`) {
		t.Errorf("rerun with --samples 2: exit %d\n%s", res.Code, res.Stderr)
	}
}

// TestCacheAcrossJobs runs a dataset as job a, then the same requests as
// job b (another name, another file format spelling the same bodies): b is
// answered from a's results without a single call. --no-cache sends them.
func TestCacheAcrossJobs(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	data := writeFile(t, dir, "topics.csv", topicsCSV)
	tmpl := writeFile(t, dir, "qa.tmpl", qaTemplate)
	db := filepath.Join(dir, "t.db")
	dataset := []string{"--template", tmpl, "--model", "deepseek/deepseek-v3", "--param", "temperature=0.8"}
	if res := runCLI(t, keyEnv(), runArgs(db, srv, append(dataset, "--job", "a", data)...)...); res.Code != 0 {
		t.Fatalf("run a: exit %d\n%s", res.Code, res.Stderr)
	}
	before := settled(t, srv)
	if before.Calls != 3 {
		t.Fatalf("job a made %d calls, want 3", before.Calls)
	}

	// Job b: the same three requests, spelled as a JSONL file of request
	// bodies with their keys in another order and 0.80 for 0.8, plus one
	// new request.
	exported := exportJSONL(t, db, "a", "flat")
	var lines []any
	for i, topic := range []string{"photosynthesis", "black holes, and why light cannot escape", "TCP handshakes"} {
		level := []string{"beginner", "expert", "intermediate"}[i]
		prompt := strings.NewReplacer("{{.level}}", level, "{{.topic}}", topic).Replace(strings.TrimSpace(qaTemplate))
		lines = append(lines, fmt.Sprintf(`{"temperature":0.80,"messages":[{"content":%s,"role":"user"}],"model":"deepseek/deepseek-v3","custom_id":"b-%d"}`,
			mustJSON(t, prompt), i))
	}
	lines = append(lines, `{"model":"deepseek/deepseek-v3","messages":[{"role":"user","content":"something new"}]}`)
	file := writeLines(t, dir, "b.jsonl", lines...)
	res := runCLI(t, keyEnv(), runArgs(db, srv, file)...)
	if res.Code != 0 || !strings.Contains(res.Stderr, "job b: 3 requests answered from the cache") {
		t.Fatalf("run b: exit %d\n%s", res.Code, res.Stderr)
	}
	after := settled(t, srv)
	if got := after.Calls - before.Calls; got != 1 {
		t.Errorf("job b made %d calls, want 1 (only the new request)", got)
	}
	if got := after.ServedByKey["something new"]; got != 1 {
		t.Errorf("the new request was served %d times", got)
	}
	st := statusJSON(t, db, "b")
	if st["cached"] != 3.0 || count(t, st, "succeeded") != 4 || st["attempts"] != 1.0 {
		t.Errorf("status b: cached %v, succeeded %d, attempts %v; want 3 cached of 4, 1 attempt", st["cached"], count(t, st, "succeeded"), st["attempts"])
	}
	if st := statusJSON(t, db, "a"); st["cached"] != 0.0 {
		t.Errorf("status a: cached %v", st["cached"])
	}
	if res := runCLI(t, nil, "--db", db, "status", "b"); !strings.Contains(res.Stdout, "cached") {
		t.Errorf("status table does not show cached hits:\n%s", res.Stdout)
	}
	flat := exportJSONL(t, db, "b", "flat")
	for i := range 3 {
		if flat[i]["content"] != exported[i]["content"] || flat[i]["status"] != "succeeded" {
			t.Errorf("b-%d: content %v, want a's %v", i, flat[i]["content"], exported[i]["content"])
		}
	}

	// --no-cache: a third job of the same requests calls the API.
	if res := runCLI(t, keyEnv(), runArgs(db, srv, append(dataset, "--job", "c", "--no-cache", data)...)...); res.Code != 0 {
		t.Fatalf("run c: exit %d\n%s", res.Code, res.Stderr)
	}
	if got := settled(t, srv).Calls - after.Calls; got != 3 {
		t.Errorf("job c with --no-cache made %d calls, want 3", got)
	}
	if st := statusJSON(t, db, "c"); st["cached"] != 0.0 {
		t.Errorf("status c: cached %v", st["cached"])
	}
}

// committed counts the results in the database at path, or -1 while it
// cannot be read yet (a run is still creating it).
func committed(t *testing.T, path string) int {
	db := openDB(t, path, false)
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM results`).Scan(&n); err != nil {
		return -1
	}
	return n
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSamplesKillAndResume runs a dataset with --samples 3 in the real
// binary, kills it with SIGKILL mid-run, and runs it again to the end:
// every record has exactly three results, one per sample, none twice, and
// the samples were not answered from each other through the cache.
func TestSamplesKillAndResume(t *testing.T) {
	const n, k = 120, 3
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 20 * time.Millisecond})
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"id\":\"r%d\",\"q\":\"question %d\"}\n", i, i)
	}
	data := writeFile(t, dir, "samples.jsonl", b.String())
	tmpl := writeFile(t, dir, "s.tmpl", "{{.q}}")
	db := filepath.Join(dir, "samples.db")
	args := []string{"--db", db, "run", "--base-url", srv.URL(), "--concurrency", "8", "--template", tmpl,
		"--model", "m", "--id-field", "id", "--samples", fmt.Sprint(k), data}
	p := startBinary(t, dir, binEnv(dir), args...)
	// Kill once some samples are committed, so that the rerun resumes
	// rather than starts over.
	waitUntil(t, time.Minute, "some samples committed", func() bool {
		return p.exited() || (srv.Stats().Served >= 40 && committed(t, db) > 0)
	})
	p.kill()
	killed := srv.Stats().Served
	if got := committed(t, db); got <= 0 || got >= n*k {
		t.Fatalf("%d of %d samples committed at the kill; the test needs some, not all", got, n*k)
	}
	p = startBinary(t, dir, binEnv(dir), args...)
	p.expect(0, 2*time.Minute)
	t.Logf("killed after %d answers; the rerun: %s", killed, strings.TrimSpace(p.stderr.String()))

	flat := exportJSONL(t, db, "samples", "flat")
	if len(flat) != n*k {
		t.Fatalf("%d exported results, want %d", len(flat), n*k)
	}
	seen := map[string]bool{}
	for i, l := range flat {
		id, _ := l["custom_id"].(string)
		want := fmt.Sprintf("r%d#%d", i/k, i%k)
		if id != want || l["status"] != "succeeded" || l["content"] != fmt.Sprintf("echo: question %d", i/k) {
			t.Errorf("result %d: %v; want %s", i, l, want)
		}
		if seen[id] {
			t.Errorf("%s exported twice", id)
		}
		seen[id] = true
	}
	if got := queryInt(t, db, `SELECT count(*) FROM results`); got != n*k {
		t.Errorf("%d results stored, want %d", got, n*k)
	}
	if got := queryInt(t, db, `SELECT count(*) FROM requests WHERE attempts != 1`); got != 0 {
		t.Errorf("%d samples have attempts != 1", got)
	}
	if got := queryInt(t, db, `SELECT count(*) FROM results WHERE cached = 1`); got != 0 {
		t.Errorf("%d samples were answered from another sample's result", got)
	}
	if got := queryInt(t, db, `SELECT count(DISTINCT cache_key) FROM requests`); got != n*k {
		t.Errorf("%d distinct cache keys, want one per sample (%d)", got, n*k)
	}
	// Each sample was asked of the API: at least k answers per record.
	for key, served := range srv.Stats().ServedByKey {
		if served < k {
			t.Errorf("%q served %d times, want at least %d", key, served, k)
		}
	}
	merged := runCLI(t, nil, "--db", db, "export", "--format", "merged", "samples")
	sc := bufio.NewScanner(strings.NewReader(merged.Stdout))
	lines := 0
	for sc.Scan() {
		if want := fmt.Sprintf(`{"id":"r%d","q":"question %d","answer":`, lines/k, lines/k); !strings.HasPrefix(sc.Text(), want) {
			t.Errorf("merged line %d = %s, want the record then its sample's answer", lines, sc.Text())
		}
		lines++
	}
	if lines != n*k {
		t.Errorf("%d merged lines, want %d (each record once per sample, in input order)", lines, n*k)
	}
}
