package output

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/llmbatch/llmbatch/jobs"
)

// exportWith writes recs in format f with options o and returns what went
// to out and to errs (errs only when split).
func exportWith(t *testing.T, f Format, o ExportOptions, recs []jobs.Record, split bool) (out, errs []byte) {
	t.Helper()
	var ob, eb bytes.Buffer
	var ew io.Writer
	if split {
		ew = &eb
	}
	x := NewExporter(f, "eval-2025", &ob, ew)
	x.SetOptions(o)
	for _, r := range recs {
		if err := x.Write(r); err != nil {
			t.Fatalf("Write(%s): %v", r.Request.CustomID, err)
		}
	}
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	return ob.Bytes(), eb.Bytes()
}

// datasetOptions are the options of datasetRecords' job, its dataset's
// columns learnt as the command line learns them.
func datasetOptions(t *testing.T, recs []jobs.Record) ExportOptions {
	t.Helper()
	d := NewDatasetColumns()
	for _, r := range recs {
		if err := d.Observe(r); err != nil {
			t.Fatal(err)
		}
	}
	return ExportOptions{WithRequest: true, Samples: 2, Dataset: d}
}

// tabularCases are the jobs the csv and parquet goldens hold.
func tabularCases(t *testing.T) []struct {
	name string
	opts ExportOptions
	recs []jobs.Record
} {
	ds := datasetRecords()
	return []struct {
		name string
		opts ExportOptions
		recs []jobs.Record
	}{
		{"requests", ExportOptions{}, append(fixtureRecords(), embeddingRecords()...)},
		{"dataset", datasetOptions(t, ds), ds},
	}
}

func TestExportCSVGolden(t *testing.T) {
	for _, c := range tabularCases(t) {
		t.Run(c.name, func(t *testing.T) {
			out, _ := exportWith(t, FormatCSV, c.opts, c.recs, false)
			golden(t, "export_"+c.name+".csv", out)
			rows := readCSV(t, out)
			if want := finished(c.recs) + 1; len(rows) != want {
				t.Errorf("%d rows with the header, want %d", len(rows), want)
			}
		})
	}
}

// TestExportParquetGolden reads the file back with parquet-go and compares
// its schema and rows with the golden file.
func TestExportParquetGolden(t *testing.T) {
	for _, c := range tabularCases(t) {
		t.Run(c.name, func(t *testing.T) {
			out, _ := exportWith(t, FormatParquet, c.opts, c.recs, false)
			p := readParquet(t, out)
			if len(p.rows) != finished(c.recs) {
				t.Errorf("%d rows, want %d", len(p.rows), finished(c.recs))
			}
			golden(t, "export_"+c.name+".parquet.txt", p.dump(t))
		})
	}
}

// TestExportParquetRows checks the rows that matter by value: an
// embeddings row, a failed row, a dataset's columns and samples.
func TestExportParquetRows(t *testing.T) {
	out, _ := exportWith(t, FormatParquet, ExportOptions{}, append(fixtureRecords(), embeddingRecords()...), false)
	p := readParquet(t, out)
	byID := p.byID()
	tests := []struct {
		id     string
		column string
		want   any
	}{
		{"emb-floats", "embedding", []float32{0.0023064255, -0.009327292, 1.5e-3}},
		{"emb-floats", "prompt_tokens", int64(5)},
		{"emb-floats", "completion_tokens", int64(0)},
		{"emb-base64", "embedding", []float32{1, -2.5, 0.1}},
		{"emb-no-vector", "embedding", nil},
		{"emb-failed", "embedding", nil},
		{"emb-failed", "error_code", "invalid_request"},
		{"chat-ok", "embedding", nil},
		{"chat-ok", "content", "Paris."},
		{"chat-ok", "reasoning_tokens", int64(31)},
		{"chat-ok", "latency_ms", int64(2345)},
		{"chat-ok", "error_code", nil},
		{"completion-ok", "prompt_tokens", nil}, // the answer reported no usage
		{"completion-ok", "attempts", int64(1)},
		{"bad-request", "status", "failed"},
		{"bad-request", "content", nil},
		{"bad-request", "prompt_tokens", nil},
		{"bad-request", "error_message", "max_tokens must be at most 8192"},
		{"cancelled", "error_code", "cancelled"},
		{"with-metadata", "metadata", `{"split": "test", "idx":7,"weight":1.50}`},
		{"with-metadata", "content", ""},
		{"network-down", "metadata", `["a","b"]`},
	}
	for _, tt := range tests {
		if got := byID[tt.id][tt.column]; !sameValue(got, tt.want) {
			t.Errorf("%s: %s = %#v, want %#v", tt.id, tt.column, got, tt.want)
		}
	}

	ds := datasetRecords()
	out, _ = exportWith(t, FormatParquet, datasetOptions(t, ds), ds, false)
	p = readParquet(t, out)
	wantIDs := [][2]any{{"q1", int64(0)}, {"q1", int64(1)}, {"q2", int64(0)}, {"q2", int64(1)}, {"line-3", nil}}
	for i, r := range p.rows {
		if got := [2]any{r["custom_id"], r["sample"]}; got != wantIDs[i] {
			t.Errorf("row %d: custom_id, sample = %v, want %v", i, got, wantIDs[i])
		}
	}
	q1, q2 := p.rows[0], p.rows[2]
	dsTests := []struct {
		row    map[string]any
		column string
		want   any
	}{
		{q1, "id", int64(1)},
		{q1, "question", "What is 2 + 2?"},
		{q1, "tags", `["math"]`},
		{q1, "score", 0.5},
		{q1, "ok", true},
		{q1, "dataset_status", "draft"}, // renamed: status is ours
		{q1, "status", "succeeded"},
		{q1, "prompt", "What is 2 + 2?"},
		{q2, "score", 1.0},
		{q2, "ok", false},
		{q2, "note", nil},
		{q2, "dataset_status", nil},
		{q2, "prompt", "Name a prime,\n\"quoted\""},
		{q2, "error_code", "rate_limited"},
		{p.rows[4], "question", nil},
		{p.rows[4], "request", `{"id": 3}`},
	}
	for _, tt := range dsTests {
		if got := tt.row[tt.column]; !sameValue(got, tt.want) {
			t.Errorf("%v: %s = %#v, want %#v", tt.row["custom_id"], tt.column, got, tt.want)
		}
	}
}

// TestExportCSVMatchesParquet checks that both formats have the same
// columns and, cell by cell, the same values.
func TestExportCSVMatchesParquet(t *testing.T) {
	for _, c := range tabularCases(t) {
		t.Run(c.name, func(t *testing.T) {
			csvOut, _ := exportWith(t, FormatCSV, c.opts, c.recs, false)
			pqOut, _ := exportWith(t, FormatParquet, c.opts, c.recs, false)
			rows, p := readCSV(t, csvOut), readParquet(t, pqOut)
			if !slices.Equal(rows[0], p.names) {
				t.Fatalf("csv header %q, parquet columns %q", rows[0], p.names)
			}
			if len(rows)-1 != len(p.rows) {
				t.Fatalf("csv has %d rows, parquet %d", len(rows)-1, len(p.rows))
			}
			for i, row := range rows[1:] {
				for j, name := range p.names {
					if got, want := row[j], csvText(t, p.rows[i][name]); !sameCSVCell(t, got, want) {
						t.Errorf("row %d, %s: csv %q, parquet %q", i, name, got, want)
					}
				}
			}
		})
	}
}

func TestExportTabularErrorsFile(t *testing.T) {
	recs := append(fixtureRecords(), embeddingRecords()...)
	wantOut := []string{"chat-ok", "completion-ok", "with-metadata", "pretty-printed", "emb-floats", "emb-base64", "emb-no-vector"}
	wantErrs := []string{"bad-request", "network-down", "cancelled", "bad-gateway", "server-empty", "invalid-line", "emb-failed"}
	t.Run("csv", func(t *testing.T) {
		out, errs := exportWith(t, FormatCSV, ExportOptions{}, recs, true)
		if got := csvIDs(t, out); !equal(got, wantOut) {
			t.Errorf("out has %q, want %q", got, wantOut)
		}
		if got := csvIDs(t, errs); !equal(got, wantErrs) {
			t.Errorf("errs has %q, want %q", got, wantErrs)
		}
	})
	t.Run("parquet", func(t *testing.T) {
		out, errs := exportWith(t, FormatParquet, ExportOptions{}, recs, true)
		if got := readParquet(t, out).ids(); !equal(got, wantOut) {
			t.Errorf("out has %q, want %q", got, wantOut)
		}
		if got := readParquet(t, errs).ids(); !equal(got, wantErrs) {
			t.Errorf("errs has %q, want %q", got, wantErrs)
		}
	})
}

// TestExportTabularEmpty: a job with nothing finished still gets a file
// its readers open: a header row, a schema without rows.
func TestExportTabularEmpty(t *testing.T) {
	pending := []jobs.Record{{Request: req(1, "pending", jobs.StatusPending)}}
	out, errs := exportWith(t, FormatCSV, ExportOptions{}, pending, true)
	for _, b := range [][]byte{out, errs} {
		if rows := readCSV(t, b); len(rows) != 1 || rows[0][0] != "custom_id" {
			t.Errorf("csv without rows = %q, want the header alone", b)
		}
	}
	out, errs = exportWith(t, FormatParquet, ExportOptions{}, pending, true)
	for _, b := range [][]byte{out, errs} {
		p := readParquet(t, b)
		if len(p.rows) != 0 || len(p.names) != int(numFields)-3 {
			t.Errorf("parquet without rows: %d rows, columns %q", len(p.rows), p.names)
		}
	}
}

// TestExportParquetRowGroups: a large export is written in several row
// groups, so that its memory stays bounded.
func TestExportParquetRowGroups(t *testing.T) {
	const group = 1 << 20
	base := fixtureRecords()[0]
	base.Result.Content = strings.Repeat("x", 16<<10)
	var out bytes.Buffer
	x := NewExporter(FormatParquet, "j", &out, nil)
	x.rowGroupBytes = group
	n := 3 * group / len(base.Result.Content)
	for i := range n {
		r := base
		r.Request.ID, r.Request.CustomID = int64(i+1), fmt.Sprintf("r%d", i)
		if err := x.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.RowGroups()); got < 3 {
		t.Errorf("%d row groups for 3 MiB of rows in groups of 1 MiB, want at least 3", got)
	}
	if got := readParquet(t, out.Bytes()).ids(); len(got) != n || got[n-1] != fmt.Sprintf("r%d", n-1) {
		t.Errorf("read back %d rows, want %d in order", len(got), n)
	}
}

func TestExportTabularRejects(t *testing.T) {
	badBase64 := embeddingRecords()[0]
	badBase64.Result.Raw = json.RawMessage(`{"data":[{"embedding":"not base64!"}]}`)
	notNumbers := embeddingRecords()[0]
	notNumbers.Result.Raw = json.RawMessage(`{"data":[{"embedding":[1,"two"]}]}`)
	tests := []struct {
		name    string
		rec     jobs.Record
		formats []Format
	}{
		{"BadBase64", badBase64, []Format{FormatCSV, FormatParquet, FormatFlat}},
		// csv and flat write an array as it was sent
		{"NotNumbers", notNumbers, []Format{FormatParquet}},
	}
	for _, tt := range tests {
		for _, f := range tt.formats {
			err := NewExporter(f, "j", io.Discard, nil).Write(tt.rec)
			if err == nil || !strings.Contains(err.Error(), `"emb-floats"`) || !strings.Contains(err.Error(), "embedding") {
				t.Errorf("%s: %s: Write = %v, want an error naming the request and the embedding", tt.name, f, err)
			}
		}
	}
	x := NewExporter(FormatParquet, "j", io.Discard, nil)
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := x.Write(fixtureRecords()[0]); err == nil {
		t.Error("Write after Flush succeeded; the file was already ended")
	}
}

func finished(recs []jobs.Record) int {
	n := 0
	for _, r := range recs {
		if r.Request.Status.Final() {
			n++
		}
	}
	return n
}

func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("read csv: %v\n%s", err, b)
	}
	return rows
}

func csvIDs(t *testing.T, b []byte) []string {
	var ids []string
	for _, r := range readCSV(t, b)[1:] {
		ids = append(ids, r[0])
	}
	return ids
}

// parquetFile is a parquet file read back: its schema, its column names
// and its rows by column name (nil for null, []float32 for a list).
type parquetFile struct {
	schema string
	names  []string
	rows   []map[string]any
}

func readParquet(t *testing.T, b []byte) parquetFile {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("open parquet: %v", err)
	}
	p := parquetFile{schema: f.Schema().String()}
	for _, fl := range f.Schema().Fields() {
		p.names = append(p.names, fl.Name())
	}
	r := parquet.NewReader(f)
	defer r.Close()
	buf := make([]parquet.Row, 16)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			p.rows = append(p.rows, p.decode(row))
		}
		if err == io.EOF {
			return p
		}
		if err != nil {
			t.Fatalf("read parquet: %v", err)
		}
	}
}

func (p parquetFile) decode(row parquet.Row) map[string]any {
	m := map[string]any{}
	row.Range(func(col int, vs []parquet.Value) bool {
		name := p.names[col]
		switch v := vs[0]; {
		case v.IsNull() && name == "embedding" && v.DefinitionLevel() == 1:
			m[name] = []float32{} // an empty list, not null
		case v.IsNull():
			m[name] = nil
		case v.Kind() == parquet.Float:
			fs := make([]float32, len(vs))
			for i, v := range vs {
				fs[i] = v.Float()
			}
			m[name] = fs
		case v.Kind() == parquet.ByteArray:
			m[name] = string(v.ByteArray())
		case v.Kind() == parquet.Int64:
			m[name] = v.Int64()
		case v.Kind() == parquet.Double:
			m[name] = v.Double()
		case v.Kind() == parquet.Boolean:
			m[name] = v.Boolean()
		default:
			m[name] = fmt.Sprintf("unexpected %s", v.Kind())
		}
		return true
	})
	return m
}

func (p parquetFile) byID() map[string]map[string]any {
	m := map[string]map[string]any{}
	for _, r := range p.rows {
		m[r["custom_id"].(string)] = r
	}
	return m
}

func (p parquetFile) ids() []string {
	var ids []string
	for _, r := range p.rows {
		ids = append(ids, r["custom_id"].(string))
	}
	return ids
}

// dump renders the schema and each row, a JSON array of its values in
// column order, for a golden file.
func (p parquetFile) dump(t *testing.T) []byte {
	var b bytes.Buffer
	b.WriteString(p.schema)
	b.WriteString("\n")
	for _, r := range p.rows {
		vals := make([]any, len(p.names))
		for i, n := range p.names {
			vals[i] = r[n]
		}
		line, err := json.Marshal(vals)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func sameValue(got, want any) bool {
	if g, ok := got.([]float32); ok {
		w, ok := want.([]float32)
		return ok && slices.Equal(g, w)
	}
	return got == want
}

// csvText is a parquet value as the csv format writes it.
func csvText(t *testing.T, v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case []float32:
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	t.Fatalf("unexpected value %#v", v)
	return ""
}

// sameCSVCell compares cells, vectors as float32s.
func sameCSVCell(t *testing.T, got, want string) bool {
	if !strings.HasPrefix(want, "[") || got == want {
		return got == want
	}
	var g, w []float32
	if json.Unmarshal([]byte(got), &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	return slices.EqualFunc(g, w, func(a, b float32) bool { return a == b || math.IsNaN(float64(a)) && math.IsNaN(float64(b)) })
}

// TestZstdCodec: what the small-window encoder writes, zstd as every
// reader has it (parquet-go's own codec) reads back, and so does ours.
func TestZstdCodec(t *testing.T) {
	src := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog, "), 1<<14)
	var c zstdCodec
	enc, err := c.Encode(nil, src)
	if err != nil || len(enc) >= len(src)/10 {
		t.Fatalf("Encode: %d bytes from %d, %v", len(enc), len(src), err)
	}
	for _, dec := range []interface {
		Decode(dst, src []byte) ([]byte, error)
	}{&parquet.Zstd, &c} {
		if got, err := dec.Decode(nil, enc); err != nil || !bytes.Equal(got, src) {
			t.Errorf("%T.Decode: %d bytes, %v; want the %d bytes encoded", dec, len(got), err, len(src))
		}
	}
}
