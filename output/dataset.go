package output

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/llmbatch/llmbatch/jobs"
)

// DatasetColumns are the fields of a dataset job's records (each request's
// metadata is the record it was made from), each with the type its values
// share, so that csv and parquet can write them as columns of their own.
// A parquet file's columns are fixed before its first row, so they are
// learnt in a pass of their own: Observe every record, then pass the
// result in ExportOptions.Dataset.
type DatasetColumns struct {
	names []string
	kinds []valueKind
	index map[string]int
	ms    []jobs.Member
}

// NewDatasetColumns returns DatasetColumns that have seen no record.
func NewDatasetColumns() *DatasetColumns {
	return &DatasetColumns{index: map[string]int{}}
}

// valueKind is what a dataset field's values are, as far as seen.
type valueKind uint8

const (
	kindNull   valueKind = iota // only nulls so far
	kindString                  // strings
	kindInt                     // integers that fit in 64 bits
	kindFloat                   // numbers, some not integers
	kindBool
	kindJSON // objects, arrays or a mix of kinds: written as JSON text
)

// colKind is the column a field of this kind becomes.
func (k valueKind) colKind() colKind {
	switch k {
	case kindInt:
		return colInt
	case kindFloat:
		return colFloat
	case kindBool:
		return colBool
	}
	return colText
}

// merge is the kind of a field with values of kinds k and o.
func (k valueKind) merge(o valueKind) valueKind {
	switch {
	case k == o || o == kindNull:
		return k
	case k == kindNull:
		return o
	case (k == kindInt || k == kindFloat) && (o == kindInt || o == kindFloat):
		return kindFloat
	}
	return kindJSON
}

// kindOf is the kind of the JSON value v.
func kindOf(v []byte) valueKind {
	switch v[0] {
	case '"':
		return kindString
	case 't', 'f':
		return kindBool
	case 'n':
		return kindNull
	case '{', '[':
		return kindJSON
	}
	if bytes.ContainsAny(v, ".eE") {
		return kindFloat
	}
	if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
		return kindFloat
	}
	return kindInt
}

// Observe adds the fields of rec's record. Metadata that is not a JSON
// object (a request line's own metadata, a record kept invalid) adds none.
// It returns an error once the fields are too many to be columns.
func (d *DatasetColumns) Observe(rec jobs.Record) error {
	meta := bytes.TrimSpace(rec.Request.Metadata)
	if len(meta) == 0 || meta[0] != '{' {
		return nil
	}
	ms, err := jobs.AppendMembers(d.ms[:0], meta)
	if err != nil {
		return nil
	}
	d.ms = ms
	for _, m := range ms {
		k := kindOf(meta[m.ValueStart:m.End])
		if i, ok := d.index[m.Key]; ok {
			d.kinds[i] = d.kinds[i].merge(k)
			continue
		}
		if len(d.names) >= maxColumns-int(numFields) {
			return fmt.Errorf("the dataset has more than %d fields, too many for columns; export it with --format merged",
				maxColumns-int(numFields))
		}
		d.index[m.Key] = len(d.names)
		d.names = append(d.names, m.Key)
		d.kinds = append(d.kinds, k)
	}
	return nil
}

// Len is the number of fields seen.
func (d *DatasetColumns) Len() int { return len(d.names) }
