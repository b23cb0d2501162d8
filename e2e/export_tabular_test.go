package e2e

// End-to-end tests of the csv and parquet exports: a run with failures
// exported to both, split with --errors and with --with-request, and a
// template job with --samples; each file read back (parquet with
// parquet-go, csv with encoding/csv) and checked against the flat export.

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// tabularRun runs a job of n chat lines in dir, every seventh of which the
// fake refuses with a 400, and returns the database, the job's name and
// its flat export.
func tabularRun(t *testing.T, dir string, n int) (db, job string, flat []map[string]any) {
	t.Helper()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
		if i, _ := strconv.Atoi(strings.TrimPrefix(c.CustomKey, "prompt-")); i%7 == 3 {
			return fakeapi.Fault{Status: 400}
		}
		return fakeapi.Fault{}
	}})
	lines := chatLines(n)
	for i := 0; i < n; i += 2 {
		lines[i].(map[string]any)["metadata"] = map[string]any{"split": "train", "i": i}
	}
	file := writeLines(t, dir, "tabular.jsonl", lines...)
	db = filepath.Join(dir, "t.db")
	if res := runCLI(t, keyEnv(), runArgs(db, srv, file)...); res.Code != exitSomeFailed {
		t.Fatalf("run: exit %d, want %d\n%s", res.Code, exitSomeFailed, res.Stderr)
	}
	return db, "tabular", exportJSONL(t, db, "tabular", "flat")
}

func TestExportCSVAndParquetOfARun(t *testing.T) {
	dir := t.TempDir()
	const n = 30
	db, job, flat := tabularRun(t, dir, n)
	pq, csvPath := filepath.Join(dir, "out.parquet"), filepath.Join(dir, "out.csv")
	mustCLI(t, nil, "--db", db, "export", "--format", "parquet", "-o", pq, job)
	mustCLI(t, nil, "--db", db, "export", "--format", "csv", "-o", csvPath, job)
	names, rows := readParquetFile(t, pq)
	header, cells := readCSVFile(t, csvPath)
	if !slices.Equal(names, header) {
		t.Errorf("parquet columns %q, csv header %q", names, header)
	}
	if len(rows) != n || len(cells) != n || len(flat) != n {
		t.Fatalf("%d parquet rows, %d csv rows, %d flat lines; want %d", len(rows), len(cells), len(flat), n)
	}
	failed := 0
	for i, want := range flat {
		row := rows[i]
		if row["custom_id"] != want["custom_id"] || cells[i][0] != want["custom_id"] || row["status"] != want["status"] {
			t.Errorf("row %d: %v %v (csv %q), want %v %v", i, row["custom_id"], row["status"], cells[i][0], want["custom_id"], want["status"])
		}
		if want["status"] == "failed" {
			failed++
			if row["prompt_tokens"] != nil || row["content"] != nil || row["error_code"] != "invalid_request" {
				t.Errorf("failed row %d: %v", i, row)
			}
			continue
		}
		usage := want["usage"].(map[string]any)
		if row["content"] != want["content"] || row["prompt_tokens"] != int64(usage["prompt_tokens"].(float64)) ||
			row["total_tokens"] != int64(usage["total_tokens"].(float64)) || row["error_code"] != nil {
			t.Errorf("row %d: %v, want %v", i, row, want)
		}
		if meta := want["metadata"]; meta != nil && !strings.Contains(fmt.Sprint(row["metadata"]), `"split":"train"`) {
			t.Errorf("row %d: metadata %v, want %v", i, row["metadata"], meta)
		}
	}
	if failed != 4 {
		t.Errorf("%d failed rows, want 4 (every seventh from the fourth)", failed)
	}
}

func TestExportTabularErrorsAndRequest(t *testing.T) {
	dir := t.TempDir()
	db, job, flat := tabularRun(t, dir, 15)
	for _, format := range []string{"csv", "parquet"} {
		t.Run(format, func(t *testing.T) {
			out, errs := filepath.Join(dir, "out."+format), filepath.Join(dir, "errors."+format)
			mustCLI(t, nil, "--db", db, "export", "--format", format, "--with-request", "-o", out, "--errors", errs, job)
			okRows, errRows := readTabular(t, format, out), readTabular(t, format, errs)
			var wantOK, wantErr []string
			for _, l := range flat {
				if l["status"] == "succeeded" {
					wantOK = append(wantOK, l["custom_id"].(string))
				} else {
					wantErr = append(wantErr, l["custom_id"].(string))
				}
			}
			if got := column(okRows, "custom_id"); !slices.Equal(got, wantOK) {
				t.Errorf("results have %q, want %q", got, wantOK)
			}
			if got := column(errRows, "custom_id"); !slices.Equal(got, wantErr) {
				t.Errorf("errors have %q, want %q", got, wantErr)
			}
			for _, r := range append(okRows, errRows...) {
				id := strings.TrimPrefix(fmt.Sprint(r["custom_id"]), "req-")
				if r["prompt"] != "prompt-"+id || !strings.Contains(fmt.Sprint(r["request"]), `"content":"prompt-`+id+`"`) {
					t.Errorf("%s: prompt %v, request %v", r["custom_id"], r["prompt"], r["request"])
				}
			}
		})
	}
}

// TestExportParquetOfDatasetSamples: a template job's fields are columns of
// their own type, and --samples K gives K rows per record, told apart by
// sample.
func TestExportParquetOfDatasetSamples(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	data := writeFile(t, dir, "questions.jsonl", strings.Join([]string{
		`{"id": "q1", "question": "What is 2 + 2?", "level": 1, "score": 0.5, "hard": false}`,
		`{"id": "q2", "question": "Name a prime", "level": 3, "score": 2, "hard": true, "tags": ["math"]}`,
	}, "\n")+"\n")
	tmpl := writeFile(t, dir, "q.tmpl", "{{.question}}")
	db := filepath.Join(dir, "t.db")
	const k = 3
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--template", tmpl, "--model", "deepseek/deepseek-v3", "--id-field", "id",
		"--samples", strconv.Itoa(k), data)...); res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	pq := filepath.Join(dir, "q.parquet")
	mustCLI(t, nil, "--db", db, "export", "--format", "parquet", "-o", pq, "questions")
	names, rows := readParquetFile(t, pq)
	for _, c := range []string{"sample", "id", "question", "level", "score", "hard", "tags"} {
		if !slices.Contains(names, c) {
			t.Errorf("no column %s in %q", c, names)
		}
	}
	if len(rows) != 2*k {
		t.Fatalf("%d rows, want %d", len(rows), 2*k)
	}
	for i, r := range rows {
		rec, sample := i/k, int64(i%k)
		if want := fmt.Sprintf("q%d", rec+1); r["custom_id"] != want || r["id"] != want || r["sample"] != sample {
			t.Errorf("row %d: custom_id %v, id %v, sample %v; want %s, %s, %d", i, r["custom_id"], r["id"], r["sample"], want, want, sample)
		}
		if !strings.HasPrefix(fmt.Sprint(r["content"]), "echo: ") || r["status"] != "succeeded" {
			t.Errorf("row %d: %v", i, r)
		}
	}
	if r := rows[k]; r["level"] != int64(3) || r["score"] != 2.0 || r["hard"] != true || r["tags"] != `["math"]` {
		t.Errorf("second record's fields: level %#v, score %#v, hard %#v, tags %#v", r["level"], r["score"], r["hard"], r["tags"])
	}
	if r := rows[0]; r["tags"] != nil || r["question"] != "What is 2 + 2?" {
		t.Errorf("first record's fields: tags %#v, question %#v", r["tags"], r["question"])
	}
}

// readTabular reads a csv or parquet export into rows by column name (csv
// cells as text, "" for null).
func readTabular(t *testing.T, format, path string) []map[string]any {
	t.Helper()
	if format == "parquet" {
		_, rows := readParquetFile(t, path)
		return rows
	}
	header, cells := readCSVFile(t, path)
	var rows []map[string]any
	for _, c := range cells {
		r := map[string]any{}
		for i, name := range header {
			r[name] = c[i]
		}
		rows = append(rows, r)
	}
	return rows
}

func column(rows []map[string]any, name string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprint(r[name]))
	}
	return out
}

func readCSVFile(t *testing.T, path string) (header []string, rows [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil || len(all) == 0 {
		t.Fatalf("read %s: %v (%d rows)", path, err, len(all))
	}
	return all[0], all[1:]
}

// readParquetFile reads a parquet file with parquet-go: its column names
// and its rows by name (nil for null; []float32 for the embedding).
func readParquetFile(t *testing.T, path string) (names []string, rows []map[string]any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	for _, fl := range f.Schema().Fields() {
		names = append(names, fl.Name())
	}
	r := parquet.NewReader(f)
	defer r.Close()
	buf := make([]parquet.Row, 64)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			rows = append(rows, parquetRow(names, row))
		}
		if err == io.EOF {
			return names, rows
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
	}
}

func parquetRow(names []string, row parquet.Row) map[string]any {
	m := map[string]any{}
	row.Range(func(col int, vs []parquet.Value) bool {
		var v any
		switch first := vs[0]; {
		case first.IsNull():
		case first.Kind() == parquet.Float:
			fs := make([]float32, len(vs))
			for i, x := range vs {
				fs[i] = x.Float()
			}
			v = fs
		case first.Kind() == parquet.ByteArray:
			v = string(first.ByteArray())
		case first.Kind() == parquet.Int64:
			v = first.Int64()
		case first.Kind() == parquet.Double:
			v = first.Double()
		case first.Kind() == parquet.Boolean:
			v = first.Boolean()
		}
		m[names[col]] = v
		return true
	})
	return m
}

// TestExportTabularOfTextDataset: a text file's lines are a dataset of one
// field, text, which csv and parquet give as a column.
func TestExportTabularOfTextDataset(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	data := writeFile(t, dir, "lines.txt", "first prompt\nsecond, \"quoted\"\n")
	db := filepath.Join(dir, "t.db")
	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--model", "deepseek/deepseek-v3", data)...); res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	out := filepath.Join(dir, "lines.csv")
	mustCLI(t, nil, "--db", db, "export", "--format", "csv", "-o", out, "lines")
	rows := readTabular(t, "csv", out)
	if got := column(rows, "text"); !slices.Equal(got, []string{"first prompt", `second, "quoted"`}) {
		t.Errorf("text column %q", got)
	}
}

func TestExportUsageErrors(t *testing.T) {
	dir := t.TempDir()
	db, job, _ := tabularRun(t, dir, 5)
	for _, args := range [][]string{
		{"--format", "xlsx"},
		{"--with-request"}, // openai keeps OpenAI's shape
		{"--format", "csv", "-o", filepath.Join(dir, "a.csv"), "--errors", filepath.Join(dir, "a.csv")},
		{"--format", "merged", "--prompt-field", "answer"},
	} {
		res := runCLI(t, nil, append(append([]string{"--db", db, "export"}, args...), job)...)
		if res.Code != exitUsage {
			t.Errorf("export %q: exit %d, want %d\n%s", args, res.Code, exitUsage, res.Stderr)
		}
		if res.Stdout != "" {
			t.Errorf("export %q wrote %q", args, res.Stdout)
		}
	}
	help := mustCLI(t, nil, "export", "--help")
	for _, want := range []string{"openai", "flat", "merged", "csv", "parquet", "custom_id string", "prompt_tokens int64",
		"embedding list<float>", "--with-request", "read_parquet", "duckdb -c"} {
		if !strings.Contains(help, want) {
			t.Errorf("export --help lacks %q", want)
		}
	}
}
