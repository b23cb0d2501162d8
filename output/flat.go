package output

import (
	"fmt"
	"strconv"

	"github.com/llmbatch/llmbatch/jobs"
)

// appendFlat appends rec as a flat line, without the line break. Every
// member is always present, in the same order; see the package comment for
// what is null when.
func (e *Exporter) appendFlat(b []byte, rec jobs.Record) ([]byte, error) {
	st := rec.Request.Status
	model := rec.Request.Model
	if st == jobs.StatusSucceeded && rec.Result.Model != "" {
		model = rec.Result.Model
	}
	b = append(b, `{"custom_id":`...)
	b = appendString(b, rec.Request.CustomID)
	b = append(b, `,"status":`...)
	b = appendString(b, string(st))
	b = append(b, `,"model":`...)
	b = appendString(b, model)
	switch st {
	case jobs.StatusSucceeded:
		b = appendFlatResult(b, rec.Result)
	case jobs.StatusFailed:
		b = appendFlatError(b, string(rec.Failure.Class), rec.Failure.Message, rec.Failure.StatusCode)
	default: // cancelled; route lets nothing else through
		b = appendFlatError(b, "cancelled", cancelledMessage, 0)
	}
	b = append(b, `,"metadata":`...)
	if len(rec.Request.Metadata) == 0 {
		return append(b, "null}"...), nil
	}
	b, err := e.raw.appendRaw(b, rec.Request.Metadata)
	if err != nil {
		return b, fmt.Errorf("metadata: %w", err)
	}
	return append(b, '}'), nil
}

func appendFlatResult(b []byte, r *jobs.Result) []byte {
	b = append(b, `,"content":`...)
	b = appendString(b, r.Content)
	b = append(b, `,"reasoning_content":`...)
	b = appendString(b, r.ReasoningContent)
	b = append(b, `,"finish_reason":`...)
	b = appendString(b, r.FinishReason)
	b = append(b, `,"usage":`...)
	b = appendUsage(b, r.Usage)
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendInt(b, r.Latency.Milliseconds(), 10)
	return append(b, `,"error":null`...)
}

// appendUsage appends u as an object, or null when the response reported no
// usage, so that "unknown" is not read as zero.
func appendUsage(b []byte, u jobs.Usage) []byte {
	if !u.Known {
		return append(b, "null"...)
	}
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, u.PromptTokens, 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, u.CompletionTokens, 10)
	b = append(b, `,"reasoning_tokens":`...)
	b = strconv.AppendInt(b, u.ReasoningTokens, 10)
	b = append(b, `,"cached_tokens":`...)
	b = strconv.AppendInt(b, u.CachedTokens, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, u.TotalTokens, 10)
	return append(b, '}')
}

// appendFlatError appends the members a request without a result has:
// null text, usage and latency, and the error. statusCode 0 (no HTTP
// answer) is written as null.
func appendFlatError(b []byte, code, message string, statusCode int) []byte {
	b = append(b, `,"content":null,"reasoning_content":null,"finish_reason":null,"usage":null,"latency_ms":null,"error":{"code":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	b = append(b, `,"status_code":`...)
	if statusCode == 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(statusCode), 10)
	}
	return append(b, "}"...)
}
