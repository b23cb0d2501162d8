package output

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
)

// csvSink writes rows as RFC 4180 comma-separated values: a header row,
// then one row per request, each ended by CRLF. A field is quoted when it
// holds a comma, a quote, a line break, or white space at either end (which
// some readers trim), with its quotes doubled. A null is an empty field,
// and empty text a quoted empty field (""), so that readers that tell them
// apart (DuckDB, PostgreSQL) read each as written; pandas reads both as
// missing. Line breaks inside text are kept as they are: a quoted field
// may span lines.
type csvSink struct {
	w       *bufio.Writer
	cols    []column
	line    []byte
	raw     rawAppender
	vec     []byte // a vector as JSON, before it is quoted
	scratch []float32
	header  bool
}

func newCSVSink(w *bufio.Writer, cols []column) *csvSink {
	return &csvSink{w: w, cols: cols, line: make([]byte, 0, 4<<10)}
}

func (s *csvSink) write(t *exportRow) error {
	if err := s.writeHeader(); err != nil {
		return err
	}
	b := s.line[:0]
	for i, c := range t.cells {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = s.appendCell(b, s.cols[i], c); err != nil {
			return fmt.Errorf("%s: %w", s.cols[i].name, err)
		}
	}
	b = append(b, '\r', '\n')
	if cap(b) <= maxKeptBuffer {
		s.line = b
	}
	_, err := s.w.Write(b)
	return err
}

func (s *csvSink) writeHeader() error {
	if s.header {
		return nil
	}
	s.header = true
	b := s.line[:0]
	for i, c := range s.cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSVField(b, []byte(c.name))
	}
	_, err := s.w.Write(append(b, '\r', '\n'))
	return err
}

// end writes the header if no row did.
func (s *csvSink) end() error { return s.writeHeader() }

func (s *csvSink) appendCell(b []byte, col column, c cell) ([]byte, error) {
	if !c.set {
		return b, nil
	}
	switch col.kind {
	case colInt:
		return strconv.AppendInt(b, c.num, 10), nil
	case colFloat:
		return strconv.AppendFloat(b, c.fnum, 'g', -1, 64), nil
	case colBool:
		return strconv.AppendBool(b, c.num != 0), nil
	case colVector:
		// The JSON array holds commas: build it apart, then quote it.
		v, err := s.raw.appendVectorJSON(s.vec[:0], c.text, &s.scratch)
		if err != nil {
			return b, err
		}
		s.vec = v
		return appendCSVField(b, v), nil
	}
	if len(c.text) == 0 {
		return append(b, '"', '"'), nil
	}
	return appendCSVField(b, c.text), nil
}

// appendCSVField appends v, quoted when it must be.
func appendCSVField(b, v []byte) []byte {
	if !needsQuotes(v) {
		return append(b, v...)
	}
	b = append(b, '"')
	for {
		i := bytes.IndexByte(v, '"')
		if i < 0 {
			break
		}
		b = append(b, v[:i+1]...)
		b = append(b, '"')
		v = v[i+1:]
	}
	b = append(b, v...)
	return append(b, '"')
}

func needsQuotes(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	if isCSVSpace(v[0]) || isCSVSpace(v[len(v)-1]) {
		return true
	}
	return bytes.ContainsAny(v, ",\"\r\n")
}

func isCSVSpace(c byte) bool { return c == ' ' || c == '\t' }
