package worker

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/llmbatch/llmbatch/jobs"
)

// sseKind says what an sseEvent is.
type sseKind int

const (
	// sseData is a block with data: normally one JSON chunk.
	sseData sseKind = iota + 1
	// sseDone is "data: [DONE]", the end of an OpenAI-style stream.
	sseDone
	// sseKeepAlive is a block without data: a comment such as
	// ": keep-alive", a blank line, or only fields other than data. It shows
	// the connection is alive but is no progress, so it must not reset a
	// stall timer.
	sseKeepAlive
)

// sseEvent is one block of a server-sent event stream: the lines up to a
// blank line.
type sseEvent struct {
	Kind sseKind
	// Event is the block's "event:" field, "" when it had none. A block with
	// "event: error" is an sseData event even without data, so that a
	// provider's error is never mistaken for a keep-alive.
	Event string
	// Data is the block's data lines joined with "\n" (sseData only). It
	// is valid until the next call to Next, which reuses its memory: a
	// long stream then allocates nothing per event.
	Data []byte
}

// sseReader reads server-sent events as OpenAI-compatible APIs send them.
// It follows the SSE specification where streams depend on it (multi-line
// data, an optional space after the colon, comments, CRLF, CR or LF line
// endings, a leading byte order mark) and bounds memory: no line and no
// event may exceed maxEvent bytes.
type sseReader struct {
	r       *bufio.Reader
	max     int
	line    []byte // a line that spans reads, gathered
	data    []byte // the pending block's data lines, each followed by "\n"
	event   string // the pending block's event field
	afterCR bool   // the last line ended in CR: an LF that follows is part of it
	started bool   // the first line (and its byte order mark) is behind us
	// lent is how many buffered bytes the last line or event returned
	// still points into; they are discarded before the next read.
	lent int
	err  error // sticky: once Next fails it keeps failing
}

// sseBuffer is the size of an sseReader's read buffer: a few events' worth
// (a chunk of a stream is a few hundred bytes). The reader under it (a
// response body) is buffered already; a longer line is gathered across
// reads, so that a thousand streams in flight do not each hold the
// largest line there could be.
const sseBuffer = 512

// newSSEReader returns a reader of the events in r. A line or an event
// longer than maxEvent bytes (DefaultMaxResponseBytes when maxEvent <= 0)
// is an error wrapping errTooLarge.
func newSSEReader(r io.Reader, maxEvent int) *sseReader {
	if maxEvent <= 0 {
		maxEvent = DefaultMaxResponseBytes
	}
	return &sseReader{r: bufio.NewReaderSize(r, sseBuffer), max: maxEvent}
}

var utf8BOM = []byte("\xEF\xBB\xBF")

// Next returns the next event. Keep-alives are returned too (sseKeepAlive),
// so that the caller can tell a live but silent server from progress.
//
// At the end of the stream Next returns io.EOF, or io.ErrUnexpectedEOF when
// the stream ended inside a block with data, which is discarded as the
// specification says. One exception: a last "data: [DONE]" without its blank
// line is still returned as sseDone. A stream that ends without sseDone is
// truncated; telling that apart is the caller's job. Errors of the
// underlying reader are returned as they are.
func (s *sseReader) Next() (sseEvent, error) {
	if s.err != nil {
		return sseEvent{}, s.err
	}
	if ev, ok, err := s.whole(); ok || err != nil {
		if err != nil {
			return s.end(nil, err)
		}
		return ev, nil
	}
	for {
		line, err := s.readLine()
		if !s.started {
			s.started = true
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		if err != nil {
			return s.end(line, err)
		}
		if len(line) == 0 {
			return s.dispatch(), nil
		}
		if err := s.field(line); err != nil {
			s.err = err
			return sseEvent{}, err
		}
	}
}

// whole returns the next event without copying it when it is one data
// line and its blank line, LF-terminated and already read together, as a
// provider sends each chunk: the event then points into the read buffer
// until the next call. Anything else, ok false, goes the way of the
// specification. err is the reader's, when it had nothing to read.
func (s *sseReader) whole() (ev sseEvent, ok bool, err error) {
	s.release()
	if !s.started || s.afterCR || len(s.data) > 0 || s.event != "" {
		return ev, false, nil
	}
	buf, err := s.buffered()
	if err != nil {
		return ev, false, err
	}
	i := bytes.IndexByte(buf, '\n')
	if i < 0 || i+1 >= len(buf) || buf[i+1] != '\n' || i > s.max || !bytes.HasPrefix(buf, sseDataField) {
		return ev, false, nil
	}
	value := buf[len(sseDataField):i]
	if bytes.IndexByte(value, '\r') >= 0 {
		return ev, false, nil
	}
	value = bytes.TrimPrefix(value, []byte(" "))
	s.lent = i + 2
	ev = sseEvent{Kind: sseData, Data: value}
	if string(bytes.TrimSpace(value)) == "[DONE]" {
		ev.Kind = sseDone
	}
	return ev, true, nil
}

var sseDataField = []byte("data:")

// release discards the buffered bytes the last line or event returned.
func (s *sseReader) release() {
	if s.lent > 0 {
		_, _ = s.r.Discard(s.lent)
		s.lent = 0
	}
}

// end handles the end of the input: line is a last line without a line
// ending, err what the reader returned.
func (s *sseReader) end(line []byte, err error) (sseEvent, error) {
	if err == io.EOF && len(line) > 0 {
		if ferr := s.field(line); ferr != nil {
			err = ferr
		}
	}
	if err == io.EOF && len(s.data) > 0 {
		if ev := s.dispatch(); ev.Kind == sseDone {
			s.err = io.EOF
			return ev, nil
		}
		err = io.ErrUnexpectedEOF
	}
	s.err = err
	return sseEvent{}, err
}

// dispatch ends the pending block at a blank line.
func (s *sseReader) dispatch() sseEvent {
	ev := sseEvent{Kind: sseKeepAlive, Event: s.event}
	if len(s.data) > 0 || s.event == "error" {
		ev.Kind = sseData
		if len(s.data) > 0 {
			ev.Data = s.data[:len(s.data)-1]
		}
		if s.event == "" && string(bytes.TrimSpace(ev.Data)) == "[DONE]" {
			ev.Kind = sseDone
		}
	}
	s.data, s.event = s.data[:0], ""
	return ev
}

// field applies one non-blank line to the pending block.
func (s *sseReader) field(line []byte) error {
	if line[0] == ':' {
		return nil // a comment
	}
	name, value, found := bytes.Cut(line, []byte(":"))
	if found {
		value = bytes.TrimPrefix(value, []byte(" "))
	}
	switch string(name) {
	case "data":
		if len(s.data)+len(value) > s.max {
			return fmt.Errorf("%w: server-sent event longer than %d bytes", errTooLarge, s.max)
		}
		s.data = append(s.data, value...)
		s.data = append(s.data, '\n')
	case "event":
		s.event = string(value)
	}
	// id and retry matter to browsers reconnecting, not to us.
	return nil
}

// readLine returns the next line without its ending. The slice is valid
// until the next call: a line found whole in the read buffer is returned
// where it lies, one that spans reads is gathered. At the end of the input
// it returns what it read of an unterminated last line together with the
// error.
func (s *sseReader) readLine() ([]byte, error) {
	s.release()
	s.line = s.line[:0]
	for {
		buf, err := s.buffered()
		if err != nil {
			return s.line, err
		}
		if s.afterCR {
			s.afterCR = false
			if buf[0] == '\n' {
				_, _ = s.r.Discard(1)
				continue
			}
		}
		i := lineEnd(buf)
		n := len(buf)
		if i >= 0 {
			n = i
		}
		if len(s.line)+n > s.max {
			return nil, fmt.Errorf("%w: server-sent event line longer than %d bytes", errTooLarge, s.max)
		}
		if i >= 0 && len(s.line) == 0 {
			s.afterCR = buf[i] == '\r'
			s.lent = i + 1
			return buf[:i], nil
		}
		s.line = append(s.line, buf[:n]...)
		if i < 0 {
			_, _ = s.r.Discard(n)
			continue
		}
		s.afterCR = buf[i] == '\r'
		_, _ = s.r.Discard(i + 1)
		return s.line, nil
	}
}

// lineEnd is the index of the first CR or LF in buf, or -1: two
// vectorized scans, where bytes.IndexAny walks byte by byte.
func lineEnd(buf []byte) int {
	i := bytes.IndexByte(buf, '\n')
	head := buf
	if i >= 0 {
		head = buf[:i]
	}
	if j := bytes.IndexByte(head, '\r'); j >= 0 {
		return j
	}
	return i
}

// buffered returns the bytes buffered, reading when there are none; it
// never returns an empty slice without an error.
func (s *sseReader) buffered() ([]byte, error) {
	if s.r.Buffered() == 0 {
		if _, err := s.r.Peek(1); err != nil {
			return nil, err
		}
	}
	return s.r.Peek(s.r.Buffered())
}

// streamError classifies an error sent inside a 2xx stream, either as a
// chunk {"error": {...}} or as the data of an "event: error" block (which
// may be the error object itself): a numeric code 400–599 (a number or a
// string of digits) is classified like that HTTP status, anything else is a
// bad response. The data is kept as the failure's body.
func streamError(data []byte) *CallError {
	payload := data
	var w struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &w) == nil && present(w.Error) {
		payload = w.Error
	}
	var ae apiError
	_ = json.Unmarshal(payload, &ae)
	code, class := errorCode(ae.Code), jobs.ClassBadResponse
	if code != 0 {
		class = jobs.ClassForStatus(code)
	}
	msg := cmp.Or(ae.Message, errorMessage(data), "no message")
	return &CallError{Failure: jobs.Failure{Class: class, StatusCode: code,
		Message: "error in a stream: " + msg, Body: bytes.Clone(data)}}
}

// errorCode returns an error object's code when it is an HTTP status
// (400–599), else 0.
func errorCode(raw json.RawMessage) int {
	var code int
	if json.Unmarshal(raw, &code) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0
		}
		code, _ = strconv.Atoi(s)
	}
	if code < 400 || code > 599 {
		return 0
	}
	return code
}

// readStream feeds the events of sr to a until "data: [DONE]". onEvent,
// when not nil, is called with the kind of each event after it was handled
// (for sseData after a.Add succeeded, so a.Started is up to date).
//
// It returns nil at [DONE]; a *CallError when the stream itself is wrong: an
// error chunk or "event: error" (classified by streamError), a chunk that is
// not JSON, an event too large, or an end before [DONE] (bad_response: a
// truncated stream); and any other error of the underlying reader as it is,
// for the caller to classify as a transport error.
func readStream(sr *sseReader, a *assembler, onEvent func(sseKind)) error {
	for {
		ev, err := sr.Next()
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return badResponse("stream ended before data: [DONE]")
		case errors.Is(err, errTooLarge):
			return badResponse("%v", err)
		case err != nil:
			return err
		case ev.Event == "error":
			return streamError(ev.Data)
		case ev.Kind == sseData:
			if err := a.Add(ev.Data); err != nil {
				return err
			}
		}
		if onEvent != nil {
			onEvent(ev.Kind)
		}
		if ev.Kind == sseDone {
			return nil
		}
	}
}

// present reports whether a raw member was there and not null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

func badResponse(format string, args ...any) *CallError {
	return &CallError{Failure: jobs.Failure{Class: jobs.ClassBadResponse, Message: fmt.Sprintf(format, args...)}}
}
