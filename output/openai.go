package output

import (
	"fmt"
	"strconv"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
	"github.com/llmbatch/llmbatch/jobs"
)

// appendOpenAI appends rec as an OpenAI Batch output line, without the line
// break. The member order is OpenAI's: id, custom_id, response, error, then
// our metadata extension.
func (e *Exporter) appendOpenAI(b []byte, rec jobs.Record) ([]byte, error) {
	b = append(b, `{"id":"batch_req_`...)
	b = jsonscan.AppendStringBody(b, e.jobName)
	b = append(b, '_')
	b = strconv.AppendInt(b, rec.Request.ID, 10)
	b = append(b, `","custom_id":`...)
	b = jsonscan.AppendString(b, rec.Request.CustomID)
	var err error
	switch rec.Request.Status {
	case jobs.StatusSucceeded:
		b, err = e.appendOpenAIResult(b, rec.Result)
	case jobs.StatusFailed:
		b = e.appendOpenAIFailure(b, rec.Failure)
	default: // cancelled; route lets nothing else through
		b = append(b, `,"response":null`...)
		b = appendOpenAIError(b, "cancelled", cancelledMessage)
	}
	if err != nil {
		return b, err
	}
	if len(rec.Request.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		if b, err = e.raw.appendRaw(b, rec.Request.Metadata); err != nil {
			return b, fmt.Errorf("metadata: %w", err)
		}
	}
	return append(b, '}'), nil
}

// appendOpenAIResult appends the response of a succeeded request and a null
// error. status_code is the answer's, 200 when the store did not keep it;
// request_id is the x-request-id header, or the response id without one.
func (e *Exporter) appendOpenAIResult(b []byte, r *jobs.Result) ([]byte, error) {
	code := r.StatusCode
	if code == 0 {
		code = 200
	}
	id := r.ProviderRequestID
	if id == "" {
		id = r.ResponseID
	}
	b = append(b, `,"response":{"status_code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"request_id":`...)
	b = jsonscan.AppendString(b, id)
	b = append(b, `,"body":`...)
	b, err := e.raw.appendRaw(b, r.Raw)
	if err != nil {
		return b, fmt.Errorf("response body: %w", err)
	}
	return append(b, `},"error":null`...), nil
}

// appendOpenAIFailure appends the response and the error of a failed
// request as OpenAI's Batch API writes them: a failure with an HTTP answer
// is that answer (its status, the provider's request id, its body) with a
// null error; only a failure without one (network, timeout, invalid input)
// has a null response and an error saying why.
func (e *Exporter) appendOpenAIFailure(b []byte, f *jobs.Failure) []byte {
	if f.StatusCode == 0 {
		b = append(b, `,"response":null`...)
		return appendOpenAIError(b, string(f.Class), f.Message)
	}
	b = append(b, `,"response":{"status_code":`...)
	b = strconv.AppendInt(b, int64(f.StatusCode), 10)
	b = append(b, `,"request_id":`...)
	b = jsonscan.AppendString(b, f.RequestID)
	b = append(b, `,"body":`...)
	b = e.raw.appendLenient(b, f.Body, "{}")
	return append(b, `},"error":null`...)
}

func appendOpenAIError(b []byte, code, message string) []byte {
	b = append(b, `,"error":{"code":`...)
	b = jsonscan.AppendString(b, code)
	b = append(b, `,"message":`...)
	b = jsonscan.AppendString(b, message)
	return append(b, '}')
}
