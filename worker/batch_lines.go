package worker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/llmbatch/llmbatch/jobs"
)

// lineWriter writes the lines of a batch input file.
type lineWriter struct {
	f     *os.File
	w     *bufio.Writer
	n     int
	bytes int64
}

func newLineWriter(f *os.File) *lineWriter {
	return &lineWriter{f: f, w: bufio.NewWriterSize(f, 1<<16)}
}

// add writes the line of r.
func (w *lineWriter) add(r jobs.Request) error {
	line, err := batchLine(r)
	if err != nil {
		return err
	}
	w.n++
	w.bytes += int64(len(line))
	_, err = w.w.Write(line)
	return err
}

func (w *lineWriter) close() error {
	if err := w.w.Flush(); err != nil {
		return err
	}
	return w.f.Close()
}

// batchLine is the input-file line of a request: its custom_id, the
// endpoint's url and its body as stored, less "stream" and
// "stream_options" (a batch does not stream; the answer is the same
// completion an online stream is assembled into), with a newline.
func batchLine(r jobs.Request) ([]byte, error) {
	body := r.Body
	if r.Endpoint != jobs.EndpointEmbeddings {
		var err error
		if body, err = jobs.WithoutMembers(body, "stream", "stream_options"); err != nil {
			return nil, fmt.Errorf("request %s: stored body is not a JSON object: %w", r.CustomID, err)
		}
	}
	id, _ := json.Marshal(r.CustomID)
	var b bytes.Buffer
	b.Grow(len(body) + len(id) + 80)
	b.WriteString(`{"custom_id":`)
	b.Write(id)
	b.WriteString(`,"method":"POST","url":"`)
	b.WriteString(batchURL(r.Endpoint))
	b.WriteString(`","body":`)
	b.Write(body)
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// BatchLineSize is the size of a request's line in a batch input file.
func BatchLineSize(r jobs.Request) int {
	line, err := batchLine(r)
	if err != nil {
		return len(r.Body)
	}
	return len(line)
}

// lineReader reads the lines of an output or error file, each at most max
// bytes.
type lineReader struct {
	r   *bufio.Reader
	max int64
}

func newLineReader(r io.Reader, max int64) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 1<<16), max: max}
}

var errLineTooLong = errors.New("line longer than the largest answer allowed")

// next returns the next line that is not blank, without its newline.
func (l *lineReader) next() ([]byte, error) {
	for {
		var line []byte
		for {
			chunk, err := l.r.ReadSlice('\n')
			line = append(line, chunk...)
			if int64(len(line)) > l.max {
				return nil, errLineTooLong
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF && len(line) > 0 {
				break
			}
			if err != nil {
				return nil, err
			}
			break
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			return line, nil
		}
	}
}

// outputLine is a line of a batch's output or error file.
type outputLine struct {
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// outcome turns a line of an output or error file into the outcome of its
// request, as an online attempt's answer would be decided; false for a
// line of no request the batch still holds.
func (b *BatchRunner) outcome(pb *jobs.ProviderBatch, line []byte, byID map[string]jobs.Request) (jobs.Outcome, bool) {
	var l outputLine
	if err := json.Unmarshal(line, &l); err != nil {
		return jobs.Outcome{}, false
	}
	req, ok := byID[l.CustomID]
	if !ok {
		return jobs.Outcome{}, false
	}
	delete(byID, l.CustomID) // a line answered twice in the files counts once
	body := req.Body
	b.budget.releaseBatch(req.Model, body)
	now := b.opts.Now()
	attempt := &jobs.Attempt{RequestID: req.ID, Number: req.Attempts + 1, StartedAt: pb.CreatedAt,
		Duration: now.Sub(pb.CreatedAt), ProviderBatch: pb.ID}
	req.Body = nil
	if l.Response != nil && l.Response.StatusCode >= 200 && l.Response.StatusCode <= 299 {
		parse := parseResponse
		if req.Endpoint == jobs.EndpointEmbeddings {
			parse = parseEmbeddings
		}
		res, cerr := parse(l.Response.Body)
		if cerr == nil {
			res.StatusCode, res.ProviderRequestID = l.Response.StatusCode, b.client.redact(l.Response.RequestID)
			res.CreatedAt, res.ProviderBatch = now, pb.ID
			attempt.StatusCode = res.StatusCode
			b.budget.spend(req.Model, body, res)
			return jobs.Outcome{Request: req, Attempt: attempt, Next: jobs.StatusSucceeded, CountAttempt: true, Result: res}, true
		}
		return b.lineFailed(req, attempt, b.client.fail(cerr.Class, l.Response.StatusCode, cerr.Message, cerr.Body)), true
	}
	return b.lineFailed(req, attempt, b.lineError(l)), true
}

// lineError is the failure a line of the error file reports.
func (b *BatchRunner) lineError(l outputLine) *CallError {
	if l.Response != nil && l.Response.StatusCode < 100 {
		return b.client.fail(jobs.ClassBadResponse, 0, "the batch's line has no HTTP status", nil)
	}
	if l.Response != nil {
		class := jobs.ClassForStatus(l.Response.StatusCode)
		ce := b.client.fail(class, l.Response.StatusCode, errorMessage(l.Response.Body), l.Response.Body)
		ce.RequestID = b.client.redact(l.Response.RequestID)
		return ce
	}
	code, msg := "", "the batch gave no answer"
	if l.Error != nil {
		code, msg = l.Error.Code, l.Error.Message
	}
	class := jobs.ClassServer
	if code == "batch_expired" {
		class = jobs.ClassBatchExpired
	}
	if code != "" {
		msg = code + ": " + msg
	}
	return b.client.fail(class, 0, msg, nil)
}

// lineFailed decides what becomes of a request whose line failed, as
// Runner.failed does for an online attempt: failed for good when the error
// is permanent or its attempts are used up, back to pending (due now: the
// next batch or the online fallback takes it) when it may be tried again,
// back to pending unchanged, with the run to stop, on a fatal error.
func (b *BatchRunner) lineFailed(req jobs.Request, attempt *jobs.Attempt, ce *CallError) jobs.Outcome {
	attempt.StatusCode, attempt.Class, attempt.Message = ce.StatusCode, ce.Class, ce.Message
	o := jobs.Outcome{Request: req, Attempt: attempt, Failure: &ce.Failure, CountAttempt: true}
	switch {
	case ce.Class.Disposition() == jobs.Fatal:
		o.Next, o.CountAttempt = jobs.StatusPending, false
		if b.fatal == nil {
			b.fatal = &FatalError{Failure: ce.Failure}
		}
	case ce.Class.Disposition() == jobs.Permanent || req.Attempts+1 >= b.opts.MaxAttempts:
		o.Next = jobs.StatusFailed
	default:
		o.Next = jobs.StatusPending
	}
	return o
}
