package output

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/llmbatch/llmbatch/jobs"
)

// Format is an export format.
type Format string

const (
	// FormatOpenAI is the OpenAI Batch output line, one per request.
	FormatOpenAI Format = "openai"
	// FormatFlat is one flat object per request: the text, the usage and the
	// error, without the response envelope.
	FormatFlat Format = "flat"
	// FormatMerged is the request's dataset record with the answer added
	// (see MergedFields).
	FormatMerged Format = "merged"
	// FormatCSV is one row per request with typed columns (see Columns),
	// as RFC 4180 comma-separated values with a header row.
	FormatCSV Format = "csv"
	// FormatParquet is the same rows and columns as FormatCSV in an Apache
	// Parquet file.
	FormatParquet Format = "parquet"
)

// Formats lists the export formats, the default first.
var Formats = []Format{FormatOpenAI, FormatFlat, FormatMerged, FormatCSV, FormatParquet}

// ParseFormat returns the format named s, or an error naming the formats
// there are.
func ParseFormat(s string) (Format, error) {
	if f := Format(s); slices.Contains(Formats, f) {
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want openai, flat, merged, csv or parquet)", s)
}

// tabular reports whether f writes rows of columns rather than JSON lines.
func (f Format) tabular() bool { return f == FormatCSV || f == FormatParquet }

// ExportOptions say what an Exporter writes beyond its format's defaults.
type ExportOptions struct {
	// WithRequest adds the request as sent (flat, merged, csv, parquet):
	// its body, and the text of its prompt. The records must carry their
	// bodies (jobs.RecordOptions.Bodies).
	WithRequest bool
	// Samples is the job's --samples K. Above 1, csv and parquet split
	// each custom_id "ID#i" into custom_id ID and sample i.
	Samples int
	// Dataset are the columns of the job's dataset, which csv and parquet
	// write beside the answer; nil for a job made from a file of requests.
	Dataset *DatasetColumns
}

// ExportCounts says how many requests an Exporter wrote, by status, and how
// many it skipped because they were not finished.
type ExportCounts struct {
	Succeeded  int
	Failed     int
	Cancelled  int
	Unfinished int
}

// Written is the number of lines written.
func (c ExportCounts) Written() int { return c.Succeeded + c.Failed + c.Cancelled }

// cancelledMessage is the error message of a cancelled request, in both
// formats.
const cancelledMessage = "job was cancelled before this request was sent"

// maxKeptBuffer bounds the line buffer an Exporter keeps between records, so
// that one huge response does not pin its size for the rest of the export.
const maxKeptBuffer = 1 << 20

// Exporter writes records in one format. It buffers its output: call Flush
// when done, which also ends a csv or parquet file (a parquet file's footer
// is written then, so nothing can be written after it). It is not safe for
// concurrent use.
type Exporter struct {
	format  Format
	jobName string
	out     *bufio.Writer
	errs    *bufio.Writer // nil: failed and cancelled requests go to out
	line    []byte
	raw     rawAppender
	counts  ExportCounts
	merged  *MergedFields // FormatMerged's names; nil: DefaultMergedFields
	opts    ExportOptions
	floats  []float32 // a base64 vector, decoded
	// csv and parquet: the row being written, and where rows go (for out
	// and for errs), made at the first Write.
	row              *exportRow
	outRows, errRows rowSink
	ended            bool
	rowGroupBytes    int // parquet: rowGroupBytes, less in tests

}

// rowSink writes the rows of csv or parquet to one file.
type rowSink interface {
	write(t *exportRow) error
	// end ends the file; it writes nothing to the underlying writer
	// after.
	end() error
}

// SetOptions sets what the export adds; call it before the first Write.
func (e *Exporter) SetOptions(o ExportOptions) { e.opts = o }

// NewExporter returns an Exporter that writes finished requests of the job
// named jobName to out. When errs is non-nil, failed and cancelled requests
// go to errs instead of out. errs must not be the same writer as out: pass
// nil to keep every request in out.
func NewExporter(f Format, jobName string, out, errs io.Writer) *Exporter {
	e := &Exporter{
		format:  f,
		jobName: jobName,
		out:     bufio.NewWriterSize(out, 64<<10),
		line:    make([]byte, 0, 4<<10),

		rowGroupBytes: rowGroupBytes,
	}
	if errs != nil {
		e.errs = bufio.NewWriterSize(errs, 16<<10)
	}
	return e
}

// Write writes rec as one line. Pending and running requests are not
// written, only counted.
//
// Result.Raw and Request.Metadata must be valid JSON; the store holds
// nothing else (a 2xx body that is not JSON is never recorded as a result).
// They are not validated again on the fast path, only when a line break
// forces compaction. Write returns an error naming the request, and writes
// nothing, for a succeeded request without a result or with an empty body,
// for a failed request without its failure, for a status it does not know,
// and for raw JSON that fails compaction. Errors of the underlying writer
// may surface only at Flush.
func (e *Exporter) Write(rec jobs.Record) error {
	w, counter, err := e.route(rec)
	if err != nil || w == nil {
		return err
	}
	if e.format.tabular() {
		return e.writeRow(w, counter, rec)
	}
	line, err := e.appendLine(e.line[:0], rec)
	if err != nil {
		return fmt.Errorf("export request %q: %w", rec.Request.CustomID, err)
	}
	line = append(line, '\n')
	if cap(line) <= maxKeptBuffer {
		e.line = line
	}
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	*counter++
	return nil
}

// route picks the writer and the counter for rec. It returns no writer for
// a request that is not finished.
func (e *Exporter) route(rec jobs.Record) (*bufio.Writer, *int, error) {
	errs := e.out
	if e.errs != nil {
		errs = e.errs
	}
	switch st := rec.Request.Status; st {
	case jobs.StatusPending, jobs.StatusRunning:
		e.counts.Unfinished++
		return nil, nil, nil
	case jobs.StatusSucceeded:
		if rec.Result == nil {
			return nil, nil, fmt.Errorf("export request %q: succeeded without a result", rec.Request.CustomID)
		}
		return e.out, &e.counts.Succeeded, nil
	case jobs.StatusFailed:
		if rec.Failure == nil {
			return nil, nil, fmt.Errorf("export request %q: failed without an error", rec.Request.CustomID)
		}
		return errs, &e.counts.Failed, nil
	case jobs.StatusCancelled:
		return errs, &e.counts.Cancelled, nil
	default:
		return nil, nil, fmt.Errorf("export request %q: unknown status %q", rec.Request.CustomID, st)
	}
}

func (e *Exporter) appendLine(b []byte, rec jobs.Record) ([]byte, error) {
	switch e.format {
	case FormatOpenAI:
		return e.appendOpenAI(b, rec)
	case FormatFlat:
		return e.appendFlat(b, rec)
	case FormatMerged:
		return e.appendMerged(b, rec)
	default:
		return b, fmt.Errorf("unknown format %q", e.format)
	}
}

// writeRow writes rec as a csv or parquet row to the file of w.
func (e *Exporter) writeRow(w *bufio.Writer, counter *int, rec jobs.Record) error {
	if e.ended {
		return errors.New("export: written after Flush")
	}
	if err := e.start(); err != nil {
		return err
	}
	if err := e.row.fill(rec); err != nil {
		return fmt.Errorf("export request %q: %w", rec.Request.CustomID, err)
	}
	sink := e.outRows
	if w != e.out {
		sink = e.errRows
	}
	if err := sink.write(e.row); err != nil {
		return fmt.Errorf("export request %q: %w", rec.Request.CustomID, err)
	}
	*counter++
	return nil
}

// start makes the row and the sinks of csv and parquet, once.
func (e *Exporter) start() error {
	if e.row != nil {
		return nil
	}
	t, err := newExportRow(e.opts)
	if err != nil {
		return err
	}
	e.row = t
	e.outRows = e.newSink(e.out)
	if e.errs != nil {
		e.errRows = e.newSink(e.errs)
	}
	return nil
}

func (e *Exporter) newSink(w *bufio.Writer) rowSink {
	if e.format == FormatCSV {
		return newCSVSink(w, e.row.cols)
	}
	return newParquetSink(w, e.row.cols, e.rowGroupBytes)
}

// Flush writes out whatever is buffered, to both writers. For csv and
// parquet it ends the files: a file without rows still gets its header
// (csv) or its schema (parquet).
func (e *Exporter) Flush() error {
	if e.format.tabular() && !e.ended {
		if err := e.endRows(); err != nil {
			return err
		}
	}
	if err := e.out.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if e.errs != nil {
		if err := e.errs.Flush(); err != nil {
			return fmt.Errorf("export errors: %w", err)
		}
	}
	return nil
}

// endRows ends the csv or parquet files.
func (e *Exporter) endRows() error {
	if err := e.start(); err != nil {
		return err
	}
	e.ended = true
	if err := e.outRows.end(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if e.errRows != nil {
		if err := e.errRows.end(); err != nil {
			return fmt.Errorf("export errors: %w", err)
		}
	}
	return nil
}

// Counts returns how many requests were written, by status, and how many
// were skipped as unfinished.
func (e *Exporter) Counts() ExportCounts { return e.counts }
