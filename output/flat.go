package output

import (
	"fmt"
	"strconv"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
	"github.com/llmbatch/llmbatch/jobs"
)

// appendFlat appends rec as a flat line, without the line break. Every
// member is always present, in the same order; see the package comment for
// what is null when.
func (e *Exporter) appendFlat(b []byte, rec jobs.Record) ([]byte, error) {
	st := rec.Request.Status
	b = append(b, `{"custom_id":`...)
	b = jsonscan.AppendString(b, rec.Request.CustomID)
	b = append(b, `,"status":`...)
	b = jsonscan.AppendString(b, string(st))
	b = append(b, `,"model":`...)
	b = jsonscan.AppendString(b, answerModel(rec))
	var err error
	switch st {
	case jobs.StatusSucceeded:
		b, err = e.appendFlatResult(b, rec)
	case jobs.StatusFailed:
		b = appendFlatError(b, rec.Request.Endpoint, string(rec.Failure.Class), rec.Failure.Message, rec.Failure.StatusCode)
	default: // cancelled; route lets nothing else through
		b = appendFlatError(b, rec.Request.Endpoint, "cancelled", cancelledMessage, 0)
	}
	if err != nil {
		return b, err
	}
	b = append(b, `,"metadata":`...)
	if len(rec.Request.Metadata) == 0 {
		b = append(b, "null"...)
	} else if b, err = e.raw.appendRaw(b, rec.Request.Metadata); err != nil {
		return b, fmt.Errorf("metadata: %w", err)
	}
	if e.opts.WithRequest {
		b = append(b, `,"request":`...)
		b = e.appendRequest(b, rec.Request)
		b = append(b, `,"prompt":`...)
		b = appendPrompt(b, rec.Request)
	}
	return append(b, '}'), nil
}

func (e *Exporter) appendFlatResult(b []byte, rec jobs.Record) ([]byte, error) {
	r := rec.Result
	if rec.Request.Endpoint == jobs.EndpointEmbeddings { // a vector has no text
		b = append(b, `,"content":null,"reasoning_content":null,"finish_reason":null,"embedding":`...)
		var err error
		if b, err = e.appendEmbedding(b, r.Raw); err != nil {
			return b, err
		}
	} else {
		b = append(b, `,"content":`...)
		b = jsonscan.AppendString(b, r.Content)
		b = append(b, `,"reasoning_content":`...)
		b = jsonscan.AppendString(b, r.ReasoningContent)
		b = append(b, `,"finish_reason":`...)
		b = jsonscan.AppendString(b, r.FinishReason)
	}
	b = append(b, `,"usage":`...)
	b = appendUsage(b, r.Usage)
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendInt(b, r.Latency.Milliseconds(), 10)
	return append(b, `,"error":null`...), nil
}

// appendEmbedding appends the vector of an embeddings answer as a JSON
// array, or null when the answer holds none.
func (e *Exporter) appendEmbedding(b, raw []byte) ([]byte, error) {
	vec, ok := firstEmbedding(raw)
	if !ok {
		return append(b, "null"...), nil
	}
	b, err := e.raw.appendVectorJSON(b, vec, &e.floats)
	if err != nil {
		return b, fmt.Errorf("embedding: %w", err)
	}
	return b, nil
}

// appendRequest appends the request's body as sent: JSON as it is (on one
// line), the text of a body that is not JSON (a line kept invalid at
// import) as a string.
func (e *Exporter) appendRequest(b []byte, q jobs.Request) []byte {
	return e.raw.appendLenient(b, q.Body, "null")
}

// appendPrompt appends the text of the request's prompt, or null when it
// has none (see promptText).
func appendPrompt(b []byte, q jobs.Request) []byte {
	p, ok := promptText(q.Endpoint, q.Body)
	if !ok {
		return append(b, "null"...)
	}
	return jsonscan.AppendString(b, p)
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
// null text (and vector, for embeddings), usage and latency, and the error. statusCode 0 (no HTTP
// answer) is written as null.
func appendFlatError(b []byte, ep jobs.Endpoint, code, message string, statusCode int) []byte {
	b = append(b, `,"content":null,"reasoning_content":null,"finish_reason":null`...)
	if ep == jobs.EndpointEmbeddings {
		b = append(b, `,"embedding":null`...)
	}
	b = append(b, `,"usage":null,"latency_ms":null,"error":{"code":`...)
	b = jsonscan.AppendString(b, code)
	b = append(b, `,"message":`...)
	b = jsonscan.AppendString(b, message)
	b = append(b, `,"status_code":`...)
	if statusCode == 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(statusCode), 10)
	}
	return append(b, "}"...)
}
