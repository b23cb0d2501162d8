package output

import (
	"bufio"
	"fmt"
	"io"

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
)

// ParseFormat returns the format named s, or an error naming the formats
// there are.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatOpenAI, FormatFlat, FormatMerged:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want openai, flat or merged)", s)
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
// when done. It is not safe for concurrent use.
type Exporter struct {
	format  Format
	jobName string
	out     *bufio.Writer
	errs    *bufio.Writer // nil: failed and cancelled requests go to out
	line    []byte
	raw     rawAppender
	counts  ExportCounts
	merged  *MergedFields // FormatMerged's names; nil: DefaultMergedFields
}

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

// Flush writes out whatever is buffered, to both writers.
func (e *Exporter) Flush() error {
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

// Counts returns how many requests were written, by status, and how many
// were skipped as unfinished.
func (e *Exporter) Counts() ExportCounts { return e.counts }
