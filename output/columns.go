package output

// The rows of the csv and parquet formats: one per request, the same
// columns in both, filled from a record once and then written by either.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/jobs"
)

// colKind is the type of a column's values.
type colKind uint8

const (
	colText  colKind = iota // UTF-8 text
	colInt                  // a 64-bit signed integer
	colFloat                // a 64-bit float
	colBool
	// colVector is an embedding: the cell holds the vector as the provider
	// sent it (a JSON array of numbers, or a base64 string of
	// little-endian float32s), which each sink turns into its own form.
	colVector
)

func (k colKind) String() string {
	return [...]string{"string", "int64", "double", "boolean", "list<float>"}[k]
}

// column is one column of the rows.
type column struct {
	name     string
	kind     colKind
	required bool // never null
}

// field names the columns every row may have; a row's dataset columns come
// after them.
type field uint8

const (
	fCustomID field = iota
	fSample
	fStatus
	fModel
	fContent
	fReasoning
	fFinish
	fPromptTokens
	fCompletionTokens
	fReasoningTokens
	fCachedTokens
	fTotalTokens
	fLatency
	fAttempts
	fErrorCode
	fErrorMessage
	fMetadata
	fEmbedding
	fRequest
	fPrompt
	numFields
)

// fields are the columns in the order they are written. sample is there
// only with --samples K above 1, request and prompt only with
// --with-request.
var fields = [numFields]column{
	fCustomID:         {"custom_id", colText, true},
	fSample:           {"sample", colInt, false},
	fStatus:           {"status", colText, true},
	fModel:            {"model", colText, true},
	fContent:          {"content", colText, false},
	fReasoning:        {"reasoning_content", colText, false},
	fFinish:           {"finish_reason", colText, false},
	fPromptTokens:     {"prompt_tokens", colInt, false},
	fCompletionTokens: {"completion_tokens", colInt, false},
	fReasoningTokens:  {"reasoning_tokens", colInt, false},
	fCachedTokens:     {"cached_tokens", colInt, false},
	fTotalTokens:      {"total_tokens", colInt, false},
	fLatency:          {"latency_ms", colInt, false},
	fAttempts:         {"attempts", colInt, true},
	fErrorCode:        {"error_code", colText, false},
	fErrorMessage:     {"error_message", colText, false},
	fMetadata:         {"metadata", colText, false},
	fEmbedding:        {"embedding", colVector, false},
	fRequest:          {"request", colText, false},
	fPrompt:           {"prompt", colText, false},
}

// has reports whether rows written with o have the column f.
func (o ExportOptions) has(f field) bool {
	switch f {
	case fSample:
		return o.Samples > 1
	case fRequest, fPrompt:
		return o.WithRequest
	}
	return true
}

// Column is a column of the csv and parquet formats: its name and its
// parquet type (string, int64, double, boolean, list<float>).
type Column struct{ Name, Type string }

// Columns lists the columns csv and parquet write with o, in order.
func Columns(o ExportOptions) []Column {
	t, err := newExportRow(o)
	if err != nil {
		return nil
	}
	out := make([]Column, len(t.cols))
	for i, c := range t.cols {
		out[i] = Column{c.name, c.kind.String()}
	}
	return out
}

// cell is one value of a row: null unless set.
type cell struct {
	set  bool
	text []byte  // colText; colVector: the vector as sent
	num  int64   // colInt; colBool: 0 or 1
	fnum float64 // colFloat
}

// exportRow is the row being written: its columns and the cells of the
// current record. Text cells point into arena or into the record, so a row
// is valid until the next fill.
type exportRow struct {
	cols  []column
	cells []cell
	at    [numFields]int // the column of each field; -1 when not written
	ds    []int          // the column of each dataset column
	data  *DatasetColumns
	with  bool // --with-request
	arena []byte
	raw   rawAppender
	ms    []jobs.Member
}

func newExportRow(o ExportOptions) (*exportRow, error) {
	t := &exportRow{data: o.Dataset, with: o.WithRequest}
	for f := range numFields {
		t.at[f] = -1
		if o.has(f) {
			t.at[f] = len(t.cols)
			t.cols = append(t.cols, fields[f])
		}
	}
	if o.Dataset != nil {
		t.addDataset(o.Dataset)
	}
	if len(t.cols) > maxColumns {
		return nil, fmt.Errorf("%d columns are too many (at most %d)", len(t.cols), maxColumns)
	}
	t.cells = make([]cell, len(t.cols))
	return t, nil
}

// addDataset adds a column for each field of the dataset, after ours.
func (t *exportRow) addDataset(d *DatasetColumns) {
	taken := map[string]bool{}
	for _, c := range t.cols {
		taken[c.name] = true
	}
	for i, name := range d.names {
		// A dataset's field named like one of ours keeps its values
		// under a prefix rather than hiding ours.
		for name == "" || taken[name] {
			name = "dataset_" + name
		}
		taken[name] = true
		t.ds = append(t.ds, len(t.cols))
		t.cols = append(t.cols, column{name: name, kind: d.kinds[i].colKind()})
	}
}

// maxColumns bounds the columns of a row, and so a dataset's fields; the
// merged format has no such bound.
const maxColumns = 1000

// fill makes the row of rec, which route has let through (succeeded with a
// result, failed with a failure, or cancelled).
func (t *exportRow) fill(rec jobs.Record) error {
	clear(t.cells)
	t.arena = t.arena[:0]
	q := rec.Request
	id := q.CustomID
	if t.at[fSample] >= 0 {
		if base, n, ok := splitSample(id); ok {
			id = base
			t.setInt(fSample, n)
		}
	}
	t.setText(fCustomID, id)
	t.setText(fStatus, string(q.Status))
	t.setText(fModel, answerModel(rec))
	t.setInt(fAttempts, int64(q.Attempts))
	switch q.Status {
	case jobs.StatusSucceeded:
		if err := t.fillResult(q, rec.Result); err != nil {
			return err
		}
	case jobs.StatusFailed:
		t.setText(fErrorCode, string(rec.Failure.Class))
		t.setText(fErrorMessage, rec.Failure.Message)
	default: // cancelled; route lets nothing else through
		t.setText(fErrorCode, "cancelled")
		t.setText(fErrorMessage, cancelledMessage)
	}
	if len(q.Metadata) > 0 {
		if err := t.setJSON(fMetadata, q.Metadata); err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
	}
	if t.with {
		t.fillRequest(q)
	}
	return t.fillDataset(q.Metadata)
}

func (t *exportRow) fillResult(q jobs.Request, r *jobs.Result) error {
	if q.Endpoint != jobs.EndpointEmbeddings { // a vector has no text
		t.setText(fContent, r.Content)
		t.setText(fReasoning, r.ReasoningContent)
		t.setText(fFinish, r.FinishReason)
	}
	if u := r.Usage; u.Known {
		t.setInt(fPromptTokens, u.PromptTokens)
		t.setInt(fCompletionTokens, u.CompletionTokens)
		t.setInt(fReasoningTokens, u.ReasoningTokens)
		t.setInt(fCachedTokens, u.CachedTokens)
		t.setInt(fTotalTokens, u.TotalTokens)
	}
	t.setInt(fLatency, r.Latency.Milliseconds())
	if q.Endpoint != jobs.EndpointEmbeddings {
		return nil
	}
	vec, ok := firstEmbedding(r.Raw)
	if !ok {
		return nil // an answer without a vector: null
	}
	t.cells[t.at[fEmbedding]] = cell{set: true, text: vec}
	return nil
}

// fillRequest sets the request as sent and its prompt's text. A body that
// is not JSON (a line kept invalid at import) is given as its text.
func (t *exportRow) fillRequest(q jobs.Request) {
	if json.Valid(q.Body) {
		if t.setJSON(fRequest, q.Body) != nil {
			t.setText(fRequest, string(q.Body))
		}
	} else if len(q.Body) > 0 {
		t.setText(fRequest, string(q.Body))
	}
	if p, ok := promptText(q.Endpoint, q.Body); ok {
		t.setText(fPrompt, p)
	}
}

// fillDataset sets the dataset's columns from the record's members.
func (t *exportRow) fillDataset(meta []byte) error {
	if t.data == nil {
		return nil
	}
	meta = bytes.TrimSpace(meta)
	if len(meta) == 0 || meta[0] != '{' {
		return nil
	}
	ms, err := jobs.AppendMembers(t.ms[:0], meta)
	if err != nil {
		return nil // as DatasetColumns.Observe: no columns of its own
	}
	t.ms = ms
	for _, m := range ms {
		i, ok := t.data.index[m.Key]
		if !ok {
			return fmt.Errorf("field %q of the dataset was not there when the export began", m.Key)
		}
		col := t.ds[i]
		if err := t.setValue(col, meta[m.ValueStart:m.End]); err != nil {
			return fmt.Errorf("field %q: %w", m.Key, err)
		}
	}
	return nil
}

// setValue sets column col from a JSON value of the dataset, in the
// column's kind; null stays null.
func (t *exportRow) setValue(col int, v []byte) error {
	if string(v) == "null" {
		return nil
	}
	c := &t.cells[col]
	var err error
	switch t.cols[col].kind {
	case colInt:
		c.num, err = strconv.ParseInt(string(v), 10, 64)
	case colFloat:
		c.fnum, err = strconv.ParseFloat(string(v), 64)
	case colBool:
		c.num = 0
		if v[0] == 't' {
			c.num = 1
		}
	default:
		if v[0] == '"' {
			s, _ := unquote(v)
			c.text = t.appendText(s)
		} else {
			start := len(t.arena)
			t.arena, err = t.raw.appendRaw(t.arena, v)
			c.text = t.arena[start:]
		}
	}
	c.set = err == nil
	return err
}

func (t *exportRow) setText(f field, s string) {
	if i := t.at[f]; i >= 0 {
		t.cells[i] = cell{set: true, text: t.appendText(s)}
	}
}

// appendText copies s into the arena as valid UTF-8.
func (t *exportRow) appendText(s string) []byte {
	start := len(t.arena)
	if utf8.ValidString(s) {
		t.arena = append(t.arena, s...)
	} else {
		t.arena = append(t.arena, strings.ToValidUTF8(s, "\uFFFD")...)
	}
	return t.arena[start:len(t.arena):len(t.arena)]
}

func (t *exportRow) setInt(f field, n int64) {
	if i := t.at[f]; i >= 0 {
		t.cells[i] = cell{set: true, num: n}
	}
}

// setJSON sets f to the JSON text raw, on one line.
func (t *exportRow) setJSON(f field, raw []byte) error {
	i := t.at[f]
	if i < 0 {
		return nil
	}
	start := len(t.arena)
	var err error
	if t.arena, err = t.raw.appendRaw(t.arena, raw); err != nil {
		t.arena = t.arena[:start]
		return err
	}
	t.cells[i] = cell{set: true, text: t.arena[start:len(t.arena):len(t.arena)]}
	return nil
}

// splitSample splits the custom_id of a sample, "ID#i", into ID and i.
func splitSample(id string) (string, int64, bool) {
	i := strings.LastIndexByte(id, '#')
	if i < 0 || i == len(id)-1 {
		return id, 0, false
	}
	for _, c := range id[i+1:] {
		if c < '0' || c > '9' {
			return id, 0, false
		}
	}
	n, err := strconv.ParseInt(id[i+1:], 10, 64)
	return id[:i], n, err == nil
}

// answerModel is the model that answered, or the one asked for when none
// did.
func answerModel(rec jobs.Record) string {
	if rec.Request.Status == jobs.StatusSucceeded && rec.Result.Model != "" {
		return rec.Result.Model
	}
	return rec.Request.Model
}
