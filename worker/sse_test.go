package worker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/llmbatch/llmbatch/jobs"
)

// render shows an event as one short string, so that failures read well.
func render(ev sseEvent) string {
	kind := map[sseKind]string{sseData: "data", sseDone: "done", sseKeepAlive: "keep-alive"}[ev.Kind]
	if kind == "" {
		kind = fmt.Sprintf("kind(%d)", ev.Kind)
	}
	if ev.Event != "" {
		kind += "[" + ev.Event + "]"
	}
	if ev.Kind != sseData {
		return kind
	}
	return fmt.Sprintf("%s %q", kind, ev.Data)
}

// readEvents reads r to its first error and checks that the error sticks.
func readEvents(t *testing.T, r *sseReader) ([]string, error) {
	t.Helper()
	var got []string
	for {
		ev, err := r.Next()
		if err != nil {
			if _, again := r.Next(); again != err {
				t.Errorf("Next after %v = %v, want the same error", err, again)
			}
			return got, err
		}
		got = append(got, render(ev))
	}
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int // 0: 1 KiB
		want    []string
		wantErr error
	}{
		{"DataAndDone", "data: {\"a\":1}\n\ndata: [DONE]\n\n", 0, []string{`data "{\"a\":1}"`, "done"}, io.EOF},
		{"NoSpaceAfterColon", "data:{\"a\":1}\n\ndata:[DONE]\n\n", 0, []string{`data "{\"a\":1}"`, "done"}, io.EOF},
		{"OnlyOneSpaceRemoved", "data:  x \n\n", 0, []string{`data " x "`}, io.EOF},
		{"MultiLineData", "data: a\ndata: b\ndata:\n\n", 0, []string{`data "a\nb\n"`}, io.EOF},
		{"EmptyData", "data\n\n", 0, []string{`data ""`}, io.EOF},
		{"CommentIsKeepAlive", ": keep-alive\n\ndata: x\n\n", 0, []string{"keep-alive", `data "x"`}, io.EOF},
		{"CommentInsideEvent", "data: a\n: ping\ndata: b\n\n", 0, []string{`data "a\nb"`}, io.EOF},
		{"BlankKeepAlives", "\n\n\ndata: x\n\n\n", 0, []string{"keep-alive", "keep-alive", "keep-alive", `data "x"`, "keep-alive"}, io.EOF},
		{"CRLF", "data: a\r\ndata: b\r\n\r\n: k\r\n\r\ndata: [DONE]\r\n\r\n", 0, []string{`data "a\nb"`, "keep-alive", "done"}, io.EOF},
		{"CR", "data: a\r\rdata: b\r\r", 0, []string{`data "a"`, `data "b"`}, io.EOF},
		{"MixedEndings", "data: a\r\n\ndata: b\n\r", 0, []string{`data "a"`, `data "b"`}, io.EOF},
		{"ByteOrderMark", "\xEF\xBB\xBFdata: x\n\n", 0, []string{`data "x"`}, io.EOF},
		{"OtherFieldsIgnored", "id: 7\nretry: 1000\nfoo\ndata: x\n\nid: 8\n\n", 0, []string{`data "x"`, "keep-alive"}, io.EOF},
		{"NamedEvent", "event: message\ndata: x\n\n", 0, []string{`data[message] "x"`}, io.EOF},
		{"ErrorEvent", "event: error\ndata: {\"error\":{\"message\":\"boom\"}}\n\n", 0,
			[]string{`data[error] "{\"error\":{\"message\":\"boom\"}}"`}, io.EOF},
		{"ErrorEventWithoutData", "event: error\n\n", 0, []string{`data[error] ""`}, io.EOF},
		{"ErrorEventDoneIsNotDone", "event: error\ndata: [DONE]\n\n", 0, []string{`data[error] "[DONE]"`}, io.EOF},
		{"EventFieldResetsPerBlock", "event: error\n: x\n\ndata: y\n\n", 0, []string{`data[error] ""`, `data "y"`}, io.EOF},
		{"DoneWithSpaces", "data:  [DONE] \n\n", 0, []string{"done"}, io.EOF},
		{"DoneWithoutBlankLine", "data: x\n\ndata: [DONE]", 0, []string{`data "x"`, "done"}, io.EOF},
		{"DoneWithoutBlankLineLF", "data: [DONE]\n", 0, []string{"done"}, io.EOF},
		{"EOFWithoutDone", "data: x\n\n", 0, []string{`data "x"`}, io.EOF},
		{"EOFInsideEvent", "data: x\n\ndata: {\"cut", 0, []string{`data "x"`}, io.ErrUnexpectedEOF},
		{"EOFBeforeBlankLine", "data: {}\n", 0, nil, io.ErrUnexpectedEOF},
		{"EOFAfterComment", ": keep-alive", 0, nil, io.EOF},
		{"Empty", "", 0, nil, io.EOF},
		{"LineAtLimit", "data: 0123456789\n\n", 16, []string{`data "0123456789"`}, io.EOF},
		{"OverlongLine", "data: 0123456789a\n\n", 16, nil, errTooLarge},
		{"OverlongUnterminatedLine", "data: x\n\n" + strings.Repeat("z", 17), 16, []string{`data "x"`}, errTooLarge},
		{"OverlongEvent", "data: 0123456789\ndata: 012345\n\n", 16, nil, errTooLarge},
		{"EventAtLimit", "data: 0123456\ndata: 01234567\n\n", 16, []string{`data "0123456\n01234567"`}, io.EOF},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"Whole":   func(r io.Reader) io.Reader { return r },
		"OneByte": iotest.OneByteReader,
		"Half":    iotest.HalfReader,
		"DataErr": iotest.DataErrReader,
	}
	for _, tt := range tests {
		for rname, wrap := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				limit := tt.max
				if limit == 0 {
					limit = 1 << 10
				}
				got, err := readEvents(t, newSSEReader(wrap(strings.NewReader(tt.in)), limit))
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("events = %q, want %q", got, tt.want)
				}
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
			})
		}
	}
}

// endless is a stream that never ends; it counts what was read from it.
type endless struct {
	line []byte
	read int
}

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.line[(e.read+i)%len(e.line)]
	}
	e.read += len(p)
	return len(p), nil
}

func TestSSEReaderBoundsMemory(t *testing.T) {
	const limit = 1 << 16
	for name, line := range map[string]string{
		"LineWithoutEnd":    "x",
		"EventWithoutBlank": "data: 0123456789abcdef\n",
	} {
		t.Run(name, func(t *testing.T) {
			src := &endless{line: []byte(line)}
			_, err := newSSEReader(src, limit).Next()
			if !errors.Is(err, errTooLarge) {
				t.Fatalf("Next = %v, want errTooLarge", err)
			}
			if src.read > 2*limit {
				t.Errorf("read %d bytes before giving up, want at most %d", src.read, 2*limit)
			}
		})
	}
}

func TestSSEReaderPassesReadErrors(t *testing.T) {
	reset := errors.New("connection reset by peer")
	r := newSSEReader(io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(reset)), 0)
	got, err := readEvents(t, r)
	if want := []string{`data "a"`}; !reflect.DeepEqual(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	if err != reset {
		t.Errorf("error = %v, want the reader's %v", err, reset)
	}
}

func TestReadStream(t *testing.T) {
	const role = `{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`
	const word = `{"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}`
	const stop = `{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	reset := errors.New("read: connection reset")
	tests := []struct {
		name      string
		in        io.Reader
		want      string // the kinds seen, "+" where a.Started became true
		wantClass jobs.ErrorClass
		wantErr   error // a transport error, passed through
	}{
		{"Complete", sse(": hi", "", "data: "+role, "", ": keep-alive", "", "data: "+word, "", "data: "+stop, "", "data: [DONE]", "", "data: junk", ""),
			"keep-alive data keep-alive data+ data+ done+", "", nil},
		{"EndsWithoutDone", sse("data: "+role, "", "data: "+stop, ""), "data data", jobs.ClassBadResponse, nil},
		{"CutInsideEvent", sse("data: "+role, "", `data: {"id":"c","cho`), "data", jobs.ClassBadResponse, nil},
		{"ErrorEvent", sse("data: "+word, "", "event: error", `data: {"message":"slow down","code":429}`, ""),
			"data+", jobs.ClassRateLimited, nil},
		{"ErrorChunk", sse("data: "+word, "", `data: {"error":{"message":"bad key","code":401}}`, ""), "data+", jobs.ClassAuth, nil},
		{"NotJSON", sse("data: {oops", ""), "", jobs.ClassBadResponse, nil},
		{"TooLarge", sse("data: "+strings.Repeat("x", 2048), ""), "", jobs.ClassBadResponse, nil},
		{"TransportError", io.MultiReader(sse("data: "+word, ""), iotest.ErrReader(reset)), "data+", "", reset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAssembler(jobs.EndpointChat)
			var seen []string
			err := readStream(newSSEReader(tt.in, 1024), a, func(k sseKind) {
				s := strings.Fields(render(sseEvent{Kind: k}))[0]
				if a.Started() {
					s += "+"
				}
				seen = append(seen, s)
			})
			if got := strings.Join(seen, " "); got != tt.want {
				t.Errorf("events = %q, want %q", got, tt.want)
			}
			checkStreamError(t, err, tt.wantClass, tt.wantErr)
		})
	}
}

func checkStreamError(t *testing.T, err error, class jobs.ErrorClass, transport error) {
	t.Helper()
	var ce *CallError
	switch {
	case transport != nil:
		if err != transport {
			t.Errorf("error = %v, want the transport's %v", err, transport)
		}
	case class == "":
		if err != nil {
			t.Errorf("error = %v, want nil", err)
		}
	case !errors.As(err, &ce):
		t.Errorf("error = %v (%T), want a *CallError of class %s", err, err, class)
	case ce.Class != class || ce.Message == "":
		t.Errorf("error = %+v, want class %s with a message", ce.Failure, class)
	}
}

// sse joins lines into a stream with LF endings.
func sse(lines ...string) io.Reader {
	return strings.NewReader(strings.Join(lines, "\n") + "\n")
}

func TestStreamError(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		wantClass jobs.ErrorClass
		wantCode  int
		wantMsg   string
	}{
		{"NumericCode", `{"error":{"message":"slow down","code":429}}`, jobs.ClassRateLimited, 429, "slow down"},
		{"StringCode", `{"error":{"message":"overloaded","code":"503"}}`, jobs.ClassServer, 503, "overloaded"},
		{"Auth", `{"error":{"message":"bad key","code":401}}`, jobs.ClassAuth, 401, "bad key"},
		{"Payment", `{"error":{"message":"no balance","code":402}}`, jobs.ClassPayment, 402, "no balance"},
		{"InvalidRequest", `{"error":{"message":"context too long","code":400}}`, jobs.ClassInvalidRequest, 400, "context too long"},
		{"NamedCode", `{"error":{"message":"limit","type":"requests","code":"rate_limit_exceeded"}}`, jobs.ClassBadResponse, 0, "limit"},
		{"CodeOutOfRange", `{"error":{"message":"odd","code":1234}}`, jobs.ClassBadResponse, 0, "odd"},
		{"NoCode", `{"error":{"message":"something broke"}}`, jobs.ClassBadResponse, 0, "something broke"},
		{"StringError", `{"error":"upstream gone"}`, jobs.ClassBadResponse, 0, "upstream gone"},
		{"BareObject", `{"message":"busy","code":503}`, jobs.ClassServer, 503, "busy"},
		{"NotJSON", `internal error`, jobs.ClassBadResponse, 0, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := streamError([]byte(tt.data))
			if e.Class != tt.wantClass || e.StatusCode != tt.wantCode {
				t.Errorf("class, code = %s, %d; want %s, %d", e.Class, e.StatusCode, tt.wantClass, tt.wantCode)
			}
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", e.Message, tt.wantMsg)
			}
			if !bytes.Equal(e.Body, []byte(tt.data)) {
				t.Errorf("body = %q, want the data %q", e.Body, tt.data)
			}
		})
	}
}

// FuzzSSEReader checks that no input panics the reader or makes it return
// an event larger than its limit, that it always ends, and that how the
// input is split into reads does not change what it returns.
func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{
		"data: {\"a\":1}\n\ndata: [DONE]\n\n",
		": keep-alive\n\n\n\ndata:x\r\ndata: y\r\n\r\n",
		"data: a\r\rdata: b\r\r\n",
		"event: error\ndata: {\"error\":{\"code\":500}}\n\n",
		"\xEF\xBB\xBFdata: [DONE]",
		"data: 0123456789abcdef0123456789abcdef\n\n",
		"id: 1\nretry: 5\n:\n\n",
	} {
		f.Add([]byte(s), uint16(16))
		f.Add([]byte(s), uint16(4096))
	}
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		maxEvent := int(limit%4096) + 1
		whole, werr := fuzzRead(t, bytes.NewReader(in), maxEvent, len(in))
		bytewise, berr := fuzzRead(t, iotest.OneByteReader(bytes.NewReader(in)), maxEvent, len(in))
		if !reflect.DeepEqual(whole, bytewise) || fmt.Sprint(werr) != fmt.Sprint(berr) {
			t.Fatalf("whole read: %q, %v; byte by byte: %q, %v", whole, werr, bytewise, berr)
		}
	})
}

func fuzzRead(t *testing.T, r io.Reader, maxEvent, n int) ([]string, error) {
	sr := newSSEReader(r, maxEvent)
	var got []string
	for {
		ev, err := sr.Next()
		if err != nil {
			if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, errTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return got, err
		}
		if len(ev.Data) > maxEvent {
			t.Fatalf("event of %d bytes, limit %d", len(ev.Data), maxEvent)
		}
		if ev.Kind != sseData && ev.Kind != sseDone && ev.Kind != sseKeepAlive {
			t.Fatalf("event of kind %d", ev.Kind)
		}
		// Every event but a final [DONE] ends at a line ending.
		if got = append(got, render(ev)); len(got) > n+1 {
			t.Fatalf("%d events from %d bytes", len(got), n)
		}
	}
}

// BenchmarkSSEReader reads the bench's deepseek-r1 stream (internal/bench,
// streams) an event a read, as it comes off the network.
func BenchmarkSSEReader(b *testing.B) {
	events := fakeStreamEvents(b, 52)
	b.ReportAllocs()
	for b.Loop() {
		sr := newSSEReader(&eventFeed{events: events}, DefaultMaxResponseBytes)
		for {
			ev, err := sr.Next()
			if err != nil {
				b.Fatal(err)
			}
			if ev.Kind == sseDone {
				break
			}
		}
	}
}
