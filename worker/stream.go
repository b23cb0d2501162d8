package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// DefaultStallTimeout is how long a stream may go without a content or
// reasoning token before the attempt is abandoned and retried.
const DefaultStallTimeout = 5 * time.Minute

var (
	errStalled      = errors.New("stream stalled")
	streamTrue      = []byte(`true`)
	includeUsage    = []byte(`{"include_usage":true}`)
	streamKey       = []byte(`"stream"`)
	streamOptionKey = []byte(`"stream_options"`)
)

// prepareBody returns the body to send and whether it asks for a stream.
// With force (run --stream) every body streams. A streamed body gets
// "stream_options": {"include_usage": true} unless it sets stream_options
// itself, so that usage is recorded. Every other byte is kept.
func prepareBody(body []byte, force bool) ([]byte, bool, error) {
	stream := false
	if force {
		var err error
		if body, err = jobs.WithoutMembers(body, "stream"); err != nil {
			return nil, false, err
		}
		if body, err = jobs.WithMember(body, "stream", streamTrue); err != nil {
			return nil, false, err
		}
		stream = true
	} else if bytes.Contains(body, streamKey) {
		v, ok := jobs.Lookup(body, "stream")
		stream = ok && bytes.Equal(v, streamTrue)
	}
	if !stream {
		return body, false, nil
	}
	if bytes.Contains(body, streamOptionKey) {
		if _, ok := jobs.Lookup(body, "stream_options"); ok {
			return body, true, nil
		}
	}
	body, err := jobs.WithMember(body, "stream_options", includeUsage)
	return body, true, err
}

func isEventStream(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "text/event-stream"
}

// readStreamed reads an SSE answer and assembles it into the body the
// request would have got without streaming. A stall timer, reset only by
// chunks that carry output, cancels the attempt through cancel.
func (c *Client) readStreamed(ctx, actx context.Context, cancel context.CancelCauseFunc, req *jobs.Request,
	resp *http.Response, start time.Time) (*jobs.Result, error) {
	a := newAssembler(req.Endpoint)
	stall := time.AfterFunc(c.stall, func() { cancel(errStalled) })
	defer stall.Stop()
	var ttft time.Duration
	seen := 0
	sr := newSSEReader(&cappedReader{r: resp.Body, left: c.maxBody, over: errStreamTooLong}, int(min(c.maxBody, 1<<30)))
	err := readStream(sr, a, func(k sseKind) {
		if n := a.Outputs(); n != seen {
			seen = n
			stall.Reset(c.stall)
			if ttft == 0 {
				ttft = c.now().Sub(start)
			}
		}
	})
	if err != nil {
		return nil, c.streamFailure(ctx, actx, err)
	}
	body, err := a.Body()
	if err != nil {
		return nil, c.streamFailure(ctx, actx, err)
	}
	res, err := c.result(body, resp, start)
	if err != nil {
		return nil, err
	}
	res.TTFT = max(ttft, time.Millisecond)
	return res, nil
}

// streamFailure classifies the end of a stream that gave no result. An
// interruption wins; then a stall; then what the stream itself said.
func (c *Client) streamFailure(ctx, actx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(context.Cause(actx), errStalled) {
		return c.fail(jobs.ClassTimeout, 0, fmt.Sprintf("stream stalled: no token for %s", c.stall), nil)
	}
	var ce *CallError
	if errors.As(err, &ce) {
		return c.fail(ce.Class, ce.StatusCode, ce.Message, ce.Body)
	}
	return c.transportError(ctx, err)
}

// cappedReader fails with over, rather than ending quietly, once r has
// given left bytes: a quiet end would look like a truncated stream, or a
// head cut short.
type cappedReader struct {
	r    io.Reader
	left int64
	over error
}

// errStreamTooLong is a stream that sent more than the response limit.
var errStreamTooLong = fmt.Errorf("%w: stream longer than the response limit", errTooLarge)

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, c.over
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
