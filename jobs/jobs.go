package jobs

import (
	"encoding/json"
	"fmt"
	"time"
)

// Endpoint is the API path a request is sent to, relative to the base URL.
type Endpoint string

const (
	// EndpointChat is the chat completions endpoint (a body with messages).
	EndpointChat Endpoint = "/chat/completions"
	// EndpointCompletions is the legacy completions endpoint (a body with prompt).
	EndpointCompletions Endpoint = "/completions"
	// EndpointEmbeddings is the embeddings endpoint (a body with input).
	EndpointEmbeddings Endpoint = "/embeddings"
)

// Valid reports whether e is one of the supported endpoints.
func (e Endpoint) Valid() bool {
	return e == EndpointChat || e == EndpointCompletions || e == EndpointEmbeddings
}

// BatchURL is the path the OpenAI Batch format writes for e.
func (e Endpoint) BatchURL() string { return "/v1" + string(e) }

// Job is one imported input file and the requests it holds.
type Job struct {
	ID   int64
	Name string
	// Source is the path the job was imported from, as given.
	Source string
	// Fingerprint identifies the imported content (a hash of the file and of
	// the import options that change request bodies).
	Fingerprint  string
	DefaultModel string
	State        JobState
	CreatedAt    time.Time
	// Total is the number of requests in the job.
	Total int
	// Settings is how the job's requests are sent, stored when it was
	// created (see Settings).
	Settings Settings
	// LastEnd is why the job's last run ended, at LastEndAt, with the
	// message it ended with; "" while no run has ended.
	LastEnd        RunEnd
	LastEndAt      time.Time
	LastEndMessage string
	// Lock is the run holding the job's lock (zero when none does) and
	// LockHeartbeat when it last renewed it. A lock whose holder is gone
	// and no LastEnd written after it means that run was killed.
	Lock          LockOwner
	LockHeartbeat time.Time
}

// Request is one line of the input: a body to POST and how far it got.
type Request struct {
	ID       int64
	JobID    int64
	Line     int
	CustomID string
	Endpoint Endpoint
	Model    string
	// Body is sent byte for byte as stored.
	Body []byte
	// Metadata is the line's metadata as raw JSON, or nil. It is kept, not sent.
	Metadata json.RawMessage
	// CacheKey identifies the request's answer across jobs (see CacheKey);
	// empty when the request is never answered from the cache.
	CacheKey string
	Status   Status
	// Attempts counts HTTP attempts that ended with an answer or an error;
	// interruptions do not count.
	Attempts  int
	NotBefore time.Time
	// Invalid is set only on a line an input reader kept with
	// --skip-invalid: "FILE:LINE: reason". The store keeps such a request
	// failed (ClassInvalidInput), with the line's bytes as its Body; it is
	// never sent.
	Invalid string
}

// Usage is the token usage a response reports. Known is false when the
// response carried no usage at all, so that "unknown" is not read as zero.
type Usage struct {
	Known            bool
	PromptTokens     int64
	CompletionTokens int64
	ReasoningTokens  int64
	CachedTokens     int64
	TotalTokens      int64
}

// Add returns the sum of u and v; the sum is known if either is.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		Known:            u.Known || v.Known,
		PromptTokens:     u.PromptTokens + v.PromptTokens,
		CompletionTokens: u.CompletionTokens + v.CompletionTokens,
		ReasoningTokens:  u.ReasoningTokens + v.ReasoningTokens,
		CachedTokens:     u.CachedTokens + v.CachedTokens,
		TotalTokens:      u.TotalTokens + v.TotalTokens,
	}
}

// Sub returns u less v, the part of u that v is not (v a part of u); the
// difference is known if u is.
func (u Usage) Sub(v Usage) Usage {
	return Usage{
		Known:            u.Known,
		PromptTokens:     u.PromptTokens - v.PromptTokens,
		CompletionTokens: u.CompletionTokens - v.CompletionTokens,
		ReasoningTokens:  u.ReasoningTokens - v.ReasoningTokens,
		CachedTokens:     u.CachedTokens - v.CachedTokens,
		TotalTokens:      u.TotalTokens - v.TotalTokens,
	}
}

// Totalled returns u with TotalTokens, when a server left it out (or gave
// 0) beside prompt or completion tokens, the sum of the two: the budget,
// the pacer and the totals count total tokens, and a local server that
// reports only the parts must not be taken for free.
func (u Usage) Totalled() Usage {
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	return u
}

// Result is the successful answer to a request. A request has at most one.
type Result struct {
	RequestID int64
	// StatusCode is the HTTP status of the answer (2xx).
	StatusCode int
	// ResponseID is the provider's response id; ProviderRequestID the
	// x-request-id header, where sent.
	ResponseID        string
	ProviderRequestID string
	Model             string
	// Raw is the response body as received (for a stream, the assembled body).
	Raw              json.RawMessage
	Content          string
	ReasoningContent string
	FinishReason     string
	Usage            Usage
	Latency          time.Duration
	// TTFT is the time to the first token of a stream; zero when not streamed.
	TTFT      time.Duration
	CreatedAt time.Time
	// ProviderBatch is the local id of the provider batch that answered,
	// 0 for an online answer: its usage is priced at the batch discount.
	ProviderBatch int64
}

// Failure is the last error kept for a request that did not succeed.
type Failure struct {
	Class ErrorClass
	// StatusCode is the HTTP status, or 0 when no answer arrived.
	StatusCode int
	Message    string
	// Body is the provider's error body, where there was one.
	Body []byte
	// RequestID is the provider's id of the answer: its x-request-id
	// header, else the error body's "id", else its "request_id"; "" without
	// an HTTP answer.
	RequestID string
}

// Error renders f as one line.
func (f Failure) Error() string {
	if f.StatusCode != 0 {
		return fmt.Sprintf("%s (HTTP %d): %s", f.Class, f.StatusCode, f.Message)
	}
	return fmt.Sprintf("%s: %s", f.Class, f.Message)
}

// Attempt is one HTTP attempt at a request.
type Attempt struct {
	RequestID  int64
	Number     int
	StartedAt  time.Time
	Duration   time.Duration
	StatusCode int
	// Class is empty for a successful attempt.
	Class   ErrorClass
	Message string
	// ProviderBatch is the local id of the provider batch (ProviderBatch.ID)
	// that made this attempt; 0 for an online attempt.
	ProviderBatch int64
}

// Record is a finished (or unfinished) request with its result or failure,
// as the export reads it.
type Record struct {
	Request Request
	Result  *Result
	Failure *Failure
}
