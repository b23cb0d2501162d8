package output

// Parquet files are written with parquet-go: typed columnar output (levels,
// pages, dictionaries, compression, the footer) is a format of its own that
// DuckDB, pandas, Polars and Hugging Face datasets read natively, and not
// one to write by hand.

import (
	"bufio"
	"fmt"
	"slices"

	"github.com/parquet-go/parquet-go"
)

// rowGroupBytes is how much row data a parquet row group holds before it is
// written out. The writer keeps a row group's pages in memory until then,
// so this bounds the export's memory whatever the job's size.
const rowGroupBytes = 32 << 20

// parquetSink writes rows to a Parquet file: zstd-compressed (zstdCodec), data pages
// of version 1 (which every reader reads), dictionary-encoded where a
// column repeats a few values.
type parquetSink struct {
	w       *parquet.Writer
	cols    []column
	row     parquet.Row
	rows    []parquet.Row
	floats  []float32
	pending int // bytes of row data in the row group being built
	group   int // the bytes of row data after which a row group is written
}

func newParquetSink(w *bufio.Writer, cols []column, groupBytes int) *parquetSink {
	schema := parquet.NewSchema("llmbatch", newOrderedGroup(cols))
	pw := parquet.NewWriter(w, schema,
		parquet.Compression(&zstdCodec{}),
		parquet.DataPageVersion(1),
		parquet.CreatedBy("llmbatch", "", ""),
	)
	return &parquetSink{w: pw, cols: cols, rows: make([]parquet.Row, 1), group: groupBytes}
}

// orderedGroup is the schema's root: the columns in our order, where
// parquet.Group would sort them by name.
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func newOrderedGroup(cols []column) orderedGroup {
	g := parquet.Group{}
	for _, c := range cols {
		g[c.name] = columnNode(c)
	}
	fs := g.Fields()
	pos := map[string]int{}
	for i, c := range cols {
		pos[c.name] = i
	}
	slices.SortFunc(fs, func(a, b parquet.Field) int { return pos[a.Name()] - pos[b.Name()] })
	return orderedGroup{Group: g, fields: fs}
}

func (g orderedGroup) Fields() []parquet.Field { return g.fields }

// lowCardinality are the text columns whose values repeat: a dictionary
// stores each once.
var lowCardinality = map[string]bool{"status": true, "model": true, "finish_reason": true, "error_code": true}

func columnNode(c column) parquet.Node {
	var n parquet.Node
	switch c.kind {
	case colInt:
		n = parquet.Int(64)
	case colFloat:
		n = parquet.Leaf(parquet.DoubleType)
	case colBool:
		n = parquet.Leaf(parquet.BooleanType)
	case colVector:
		n = parquet.List(parquet.Leaf(parquet.FloatType))
	default:
		n = parquet.String()
		if lowCardinality[c.name] {
			n = parquet.Encoded(n, &parquet.RLEDictionary)
		}
	}
	if c.required {
		return parquet.Required(n)
	}
	return parquet.Optional(n)
}

func (s *parquetSink) write(t *exportRow) error {
	row := s.row[:0]
	for i, c := range t.cells {
		var err error
		if row, err = s.appendCell(row, i, c); err != nil {
			return fmt.Errorf("%s: %w", s.cols[i].name, err)
		}
		s.pending += len(c.text)
	}
	s.row = row
	s.rows[0] = row
	if _, err := s.w.WriteRows(s.rows); err != nil {
		return err
	}
	s.pending += 8 * len(row)
	if s.pending >= s.group {
		s.pending = 0
		return s.w.Flush()
	}
	return nil
}

// appendCell appends the value of column i: a required column's value at
// definition level 0, an optional one's at 1 and its null at 0. The
// embedding is an optional list of required floats: null at level 0, an
// empty list at 1, each float at 2, the first with repetition level 0 and
// the next with 1.
func (s *parquetSink) appendCell(row parquet.Row, i int, c cell) (parquet.Row, error) {
	col := s.cols[i]
	if !c.set {
		return append(row, parquet.NullValue().Level(0, 0, i)), nil
	}
	def := 1
	if col.required {
		def = 0
	}
	switch col.kind {
	case colInt:
		return append(row, parquet.Int64Value(c.num).Level(0, def, i)), nil
	case colFloat:
		return append(row, parquet.DoubleValue(c.fnum).Level(0, def, i)), nil
	case colBool:
		return append(row, parquet.BooleanValue(c.num != 0).Level(0, def, i)), nil
	case colVector:
		return s.appendVector(row, i, c.text)
	}
	return append(row, parquet.ByteArrayValue(c.text).Level(0, def, i)), nil
}

func (s *parquetSink) appendVector(row parquet.Row, i int, vec []byte) (parquet.Row, error) {
	fs, err := appendFloats(s.floats[:0], vec)
	s.floats = fs
	if err != nil {
		return row, err
	}
	if len(fs) == 0 {
		return append(row, parquet.NullValue().Level(0, 1, i)), nil
	}
	for j, f := range fs {
		rep := 1
		if j == 0 {
			rep = 0
		}
		row = append(row, parquet.FloatValue(f).Level(rep, 2, i))
	}
	return row, nil
}

// end writes the last row group and the file's footer.
func (s *parquetSink) end() error { return s.w.Close() }
