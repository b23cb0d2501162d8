package input

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// RecordFormat is how a dataset file holds its records.
type RecordFormat string

const (
	// FormatJSONL is one JSON object per line; the object is the record.
	FormatJSONL RecordFormat = "jsonl"
	// FormatCSV is comma-separated values with a header row; each row is a
	// record mapping the header's names to the row's values (strings).
	FormatCSV RecordFormat = "csv"
	// FormatText is one prompt per non-blank line; each line is the record
	// {"text": line}.
	FormatText RecordFormat = "text"
)

// ParseRecordFormat returns the format named s (as --input-format gives it).
func ParseRecordFormat(s string) (RecordFormat, error) {
	switch f := RecordFormat(s); f {
	case FormatJSONL, FormatCSV, FormatText:
		return f, nil
	}
	return "", fmt.Errorf("unknown input format %q (want jsonl, csv or text)", s)
}

// FormatOf returns the format a file's extension names: .csv is CSV, .txt
// is text, anything else (.jsonl, .json, …) JSONL.
func FormatOf(path string) RecordFormat {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return FormatCSV
	case ".txt":
		return FormatText
	}
	return FormatJSONL
}

// record is one record of a dataset file.
type record struct {
	line int // the physical line it starts on
	n    int // its number among the file's records, from 1
	// raw is the record as a JSON object: the file's own bytes for JSONL,
	// built for CSV and text. It becomes the request's metadata.
	raw []byte
	// data is what a template sees: the decoded object (numbers as
	// json.Number, so they print as spelled).
	data map[string]any
	// text is the line of a text file.
	text string
}

// recordReader yields the records of one file. next returns a valid record
// with an empty reason, an invalid one (with its line) with the reason, or
// io.EOF; any other error is a failure to read. After a reason that makes
// the rest of the file meaningless (binary data, a bad CSV header) it
// returns io.EOF.
type recordReader interface {
	next() (record, string, error)
	// emptyReason says why a file that held no record at all is invalid.
	emptyReason() string
	// stopped says that the last reason ended the file (binary data,
	// UTF-16, a bad CSV header): the file as a whole is invalid.
	stopped() bool
}

func newRecordReader(f RecordFormat, br *bufio.Reader) recordReader {
	switch f {
	case FormatCSV:
		return newCSVRecords(br)
	case FormatText:
		return &textRecords{lines: lineReader{br: br}}
	default:
		return &jsonlRecords{lines: lineReader{br: br}}
	}
}

// lineReader reads physical lines of any length, without their line
// endings; it removes a UTF-8 byte order mark and refuses UTF-16.
type lineReader struct {
	br   *bufio.Reader
	acc  []byte
	line int
}

// errUTF16 ends a file saved as UTF-16.
var errUTF16 = errors.New("UTF-16 text, not UTF-8 (save the file as UTF-8)")

// next returns the next line, valid until the following call, or io.EOF.
func (l *lineReader) next() ([]byte, error) {
	l.acc = l.acc[:0]
	for {
		chunk, err := l.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			l.acc = append(l.acc, chunk...)
			continue
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if len(l.acc) > 0 {
			l.acc = append(l.acc, chunk...)
			chunk = l.acc
		}
		if err == io.EOF && len(chunk) == 0 {
			return nil, io.EOF
		}
		l.line++
		if l.line == 1 {
			if utf16Reason(chunk) != "" {
				return nil, errUTF16
			}
			chunk = bytes.TrimPrefix(chunk, bom)
		}
		return trimEOL(chunk), nil
	}
}

// jsonlRecords reads a JSONL dataset: each non-blank line a JSON object.
type jsonlRecords struct {
	lines lineReader
	n     int
	done  bool
}

func (j *jsonlRecords) emptyReason() string { return "no records (the file is empty)" }

func (j *jsonlRecords) stopped() bool { return j.done }

func (j *jsonlRecords) next() (record, string, error) {
	for !j.done {
		raw, err := j.lines.next()
		rec := record{line: j.lines.line}
		if err == errUTF16 {
			j.done = true
			return rec, err.Error(), nil
		}
		if err != nil {
			return rec, "", err
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		j.n++
		rec.n = j.n
		if bytes.IndexByte(raw, 0) >= 0 {
			j.done = true
			return rec, "binary data (NUL byte), not a JSONL file", nil
		}
		return rec, j.parse(&rec, raw), nil
	}
	return record{}, "", io.EOF
}

// parse fills rec from a non-blank line and returns why it is invalid, or "".
func (j *jsonlRecords) parse(rec *record, raw []byte) string {
	if !utf8.Valid(raw) {
		return fmt.Sprintf("not valid UTF-8 (column %d)", badUTF8(raw)+1)
	}
	if !json.Valid(raw) {
		return invalidJSON(raw)
	}
	raw = trimSpace(raw)
	if raw[0] != '{' {
		return "a record must be a JSON object, got " + article(raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&rec.data); err != nil {
		return fmt.Sprintf("invalid JSON: %v", err)
	}
	rec.raw = bytes.Clone(raw)
	return ""
}

// textRecords reads a text file: each non-blank line is one prompt.
type textRecords struct {
	lines lineReader
	n     int
	done  bool
}

func (t *textRecords) emptyReason() string { return "no prompts (the file has no non-blank line)" }

func (t *textRecords) stopped() bool { return t.done }

func (t *textRecords) next() (record, string, error) {
	for !t.done {
		raw, err := t.lines.next()
		rec := record{line: t.lines.line}
		if err == errUTF16 {
			t.done = true
			return rec, err.Error(), nil
		}
		if err != nil {
			return rec, "", err
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		t.n++
		rec.n = t.n
		switch {
		case bytes.IndexByte(raw, 0) >= 0:
			t.done = true
			return rec, "binary data (NUL byte), not a text file", nil
		case !utf8.Valid(raw):
			return rec, fmt.Sprintf("not valid UTF-8 (column %d)", badUTF8(raw)+1), nil
		}
		rec.text = string(raw)
		rec.data = map[string]any{"text": rec.text}
		rec.raw = append(append([]byte(`{"text":`), jsonString(rec.text)...), '}')
		return rec, "", nil
	}
	return record{}, "", io.EOF
}

// csvRecords reads CSV with a header row (RFC 4180, as encoding/csv reads
// it: quoted fields may hold commas, quotes and line breaks).
type csvRecords struct {
	br     *bufio.Reader
	r      *csv.Reader
	header []string
	n      int
	done   bool
}

func newCSVRecords(br *bufio.Reader) *csvRecords {
	r := csv.NewReader(br)
	r.FieldsPerRecord = -1 // checked here, with a better message
	r.ReuseRecord = true
	return &csvRecords{br: br, r: r}
}

func (c *csvRecords) emptyReason() string {
	if c.header == nil {
		return "no header row (the file is empty)"
	}
	return "no rows after the header"
}

func (c *csvRecords) stopped() bool { return c.done }

func (c *csvRecords) next() (record, string, error) {
	if c.done {
		return record{}, "", io.EOF
	}
	if c.header == nil {
		if reason := c.readHeader(); reason != "" {
			c.done = true
			return record{line: 1}, reason, nil
		}
		if c.done {
			return record{}, "", io.EOF
		}
	}
	fields, err := c.r.Read()
	if err == io.EOF {
		c.done = true
		return record{}, "", io.EOF
	}
	c.n++
	rec := record{n: c.n}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		rec.line = pe.Line
		return rec, csvReason(pe), nil
	} else if err != nil {
		return rec, "", err
	}
	rec.line, _ = c.r.FieldPos(0) // a row read without error has a field
	return rec, c.row(&rec, fields), nil
}

// readHeader reads the header row, or says why there is none usable.
func (c *csvRecords) readHeader() string {
	if head, _ := c.br.Peek(3); utf16Reason(head) != "" {
		return errUTF16.Error()
	} else if bytes.HasPrefix(head, bom) {
		c.br.Discard(len(bom))
	}
	fields, err := c.r.Read()
	if err == io.EOF {
		c.done = true
		return ""
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return "header: " + csvReason(pe)
	} else if err != nil {
		return err.Error()
	}
	seen := make(map[string]bool, len(fields))
	for i, name := range fields {
		switch {
		case strings.IndexByte(name, 0) >= 0:
			return "binary data (NUL byte), not a CSV file"
		case !utf8.ValidString(name):
			return fmt.Sprintf("header: column %d: not valid UTF-8", i+1)
		case name == "":
			return fmt.Sprintf("header: column %d has no name", i+1)
		case seen[name]:
			return fmt.Sprintf("header: column %s appears twice", shorten(quote(name)))
		}
		seen[name] = true
	}
	c.header = append([]string(nil), fields...)
	return ""
}

// row fills rec from a data row and returns why it is invalid, or "".
func (c *csvRecords) row(rec *record, fields []string) string {
	if len(fields) != len(c.header) {
		return fmt.Sprintf("%s, but the header has %d", plural(len(fields), "field"), len(c.header))
	}
	rec.data = make(map[string]any, len(fields))
	raw := []byte{'{'}
	for i, v := range fields {
		if strings.IndexByte(v, 0) >= 0 {
			c.done = true
			return "binary data (NUL byte), not a CSV file"
		}
		if !utf8.ValidString(v) {
			return fmt.Sprintf("column %s: not valid UTF-8", shorten(quote(c.header[i])))
		}
		rec.data[c.header[i]] = v
		if i > 0 {
			raw = append(raw, ',')
		}
		raw = append(raw, jsonString(c.header[i])...)
		raw = append(raw, ':')
		raw = append(raw, jsonString(v)...)
	}
	rec.raw = append(raw, '}')
	return ""
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// csvReason words a CSV syntax error without the line, which the caller
// reports.
func csvReason(pe *csv.ParseError) string {
	return "invalid CSV: " + pe.Err.Error() + " (column " + strconv.Itoa(pe.Column) + ")"
}

// jsonString renders s as a JSON string as encoding/json does, except that
// <, > and & are left as they are.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
