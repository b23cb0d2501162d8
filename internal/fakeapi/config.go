package fakeapi

import (
	"strconv"
	"time"
)

// Config says how a Server answers. It can be replaced while the server runs
// with Server.SetConfig.
type Config struct {
	// Key, if not empty, is the API key every request must present as
	// "Authorization: Bearer <Key>"; other requests get a 401.
	Key string
	// Latency is waited before answering each request to the online
	// endpoints (not the files and batches ones). The wait ends early,
	// without an answer, when the client goes away or the server closes.
	Latency time.Duration
	// ChunkInterval is waited between the events of a stream.
	ChunkInterval time.Duration
	// StreamWords, if positive, makes streams long, as a reasoning model's
	// are: a streamed answer's content, and its reasoning for a reasoning
	// model, are each lengthened to StreamWords words (the echo repeated,
	// then cut by max_tokens as usual) and sent a word per event. A chat
	// stream of a reasoning model then has 2 × StreamWords + 2 data events
	// (+1 with include_usage), ChunkInterval apart. Plain answers are not
	// changed.
	StreamWords int
	// Faults are random faults at given rates.
	Faults Faults
	// Script, if set, decides a fault per call before Faults are drawn; it
	// returns Fault{} for none. It is called concurrently and sees only calls
	// that passed authentication and parsing. It also decides each line a
	// batch answers (then with Call.BatchID set, and while the batch is
	// locked, so it must not call the batch endpoints of this server).
	Script func(Call) Fault
	// Seed makes the random faults deterministic given the same call numbers.
	Seed int64
	// RecordBodies keeps the raw request bodies for Server.Bodies.
	RecordBodies bool
	// ReasoningModels lists substrings of model names that answer with
	// reasoning_content and count reasoning tokens. Nil means {"r1"}; an empty
	// non-nil slice means none.
	ReasoningModels []string
	// Now is the clock for the "created" field; nil means time.Now.
	Now func() time.Time
	// Style is the dialect of the answers (StyleDeepSeek, StyleVLLM or
	// StyleOpenRouter); see the package documentation.
	Style string
	// FloatUsage writes the usage counts as floats (20.0 for 20), as some
	// servers do.
	FloatUsage bool

	// The Batch API (files and batches; see the package documentation).
	// BatchDelay to BatchRefuseStream are read when a batch is created and
	// hold for its whole life; BatchClock and BatchStall at each request.

	// BatchDelay is how long after its creation a batch ends: validating
	// for the first tenth, answering its lines evenly until nine tenths,
	// finalizing until the end. 0 means DefaultBatchDelay; a negative
	// value means at once (the first request after the creation sees the
	// batch ended).
	BatchDelay time.Duration
	// BatchMaxLines, if positive, fails the validation of a file of more
	// lines, with the error "too_many_requests".
	BatchMaxLines int
	// BatchOneModel fails the validation of a file whose requests do not
	// all name the same model, with the error "mixed_models" on the first
	// line that differs from the first line.
	BatchOneModel bool
	// BatchFailNth, if positive, fails the validation of the Nth batch the
	// server creates (1-based; Reset does not restart the count), whatever
	// its file, with the error "invalid_file".
	BatchFailNth int
	// BatchExpireFraction (0..1) is the fraction of lines a batch never
	// answers, drawn from a hash of the batch id and the line's custom_id
	// (so the same line in another batch draws afresh). A batch with such
	// a line ends "expired" at the end of BatchDelay, its unanswered lines
	// in the error file as batch_expired errors.
	BatchExpireFraction float64
	// BatchRefuseStream answers a line whose body asks for a stream with a
	// 400 in the error file; otherwise such a line gets the plain answer.
	BatchRefuseStream bool
	// BatchClock is the clock batches live by (their times and progress);
	// nil means time.Now.
	BatchClock func() time.Time
	// BatchStall, if set, is called in the handler at three steps, with the
	// id of the file or batch: "upload" (the file is stored, the answer
	// not yet written), "create" (the batch is created, the answer not yet
	// written) and "download" (the headers and the first half of a file's
	// content are written and flushed, the rest not). A test blocks in it
	// to stop a client after the effect and before it sees the answer. It
	// must return for Server.Close to return.
	BatchStall func(step, id string)
}

// DefaultBatchDelay is the life of a batch when Config.BatchDelay is 0.
const DefaultBatchDelay = 200 * time.Millisecond

func (cfg *Config) batchNow() time.Time {
	if cfg.BatchClock != nil {
		return cfg.BatchClock()
	}
	return time.Now()
}

func (cfg *Config) batchDelay() time.Duration {
	switch {
	case cfg.BatchDelay == 0:
		return DefaultBatchDelay
	case cfg.BatchDelay < 0:
		return 0
	}
	return cfg.BatchDelay
}

// batchRules are the knobs that decide the fate of the batch created nth.
func (cfg *Config) batchRules(nth int64) batchRules {
	return batchRules{nth: nth, failNth: cfg.BatchFailNth, maxLines: cfg.BatchMaxLines, oneModel: cfg.BatchOneModel,
		expire: cfg.BatchExpireFraction, refuseStream: cfg.BatchRefuseStream}
}

func (cfg *Config) stall(step, id string) {
	if cfg.BatchStall != nil {
		cfg.BatchStall(step, id)
	}
}

// createdNow is the time of the "created" field of an answer.
func (cfg *Config) createdNow() time.Time {
	if cfg.Now != nil {
		return cfg.Now()
	}
	return time.Now()
}

// The styles of Config.Style: how servers other than the default
// provider's shape the same answer.
const (
	// StyleDeepSeek answers as DeepSeek and the default provider do:
	// reasoning in reasoning_content.
	StyleDeepSeek = ""
	// StyleVLLM answers as vLLM does since late 2025: reasoning in
	// message.reasoning and delta.reasoning, a stop_reason beside every
	// finish_reason (on the finish chunk only, when streaming), and a
	// top-level service_tier.
	StyleVLLM = "vllm"
	// StyleOpenRouter answers as OpenRouter does: reasoning in reasoning,
	// the role repeated in every delta, a native_finish_reason per choice
	// and the top-level provider.
	StyleOpenRouter = "openrouter"
)

// Faults are the rates (probabilities 0..1) of random faults. They are
// checked per call in the order of the fields, and the first one drawn wins.
type Faults struct {
	// RateLimit answers 429, with the Retry-After header set to RetryAfter
	// and retry-after-ms set to RetryAfterMS when those are not empty.
	RateLimit    float64
	RetryAfter   string
	RetryAfterMS string
	// ServerError answers 500.
	ServerError float64
	// Unavailable answers 503.
	Unavailable float64
	// Reset closes the connection without an answer, with SO_LINGER 0, so
	// the client sees a connection reset.
	Reset float64
	// Slow answers normally, but only after SlowBy.
	Slow   float64
	SlowBy time.Duration
	// BadJSON answers 200 with the first half of the JSON body (for a stream,
	// one data event is cut in half, and [DONE] still follows).
	BadJSON float64
	// CutStream, for stream requests only, closes the connection after
	// CutAfter data events (default 2) without [DONE].
	CutStream float64
	CutAfter  int
}

// Call is what a Config.Script sees of one request.
type Call struct {
	// N is the 1-based call number of the server (it is not reset by Reset).
	N int64
	// Path is the URL path of the request.
	Path string
	// Body is the raw request body; it must not be modified.
	Body []byte
	// CustomKey identifies the request by content: the content of the last
	// user message (chat), the prompt (completions) or the input
	// (embeddings); a prompt or input that is not a single string is given
	// as its compact JSON text.
	CustomKey string
	// Attempt counts the calls with this exact body so far, this one
	// included, 1-based. Only calls made while a Script is set are counted.
	Attempt int
	// Stream and Model are the "stream" and "model" fields of the body.
	Stream bool
	Model  string
	// BatchID and CustomID name the batch and the line of a call a batch
	// answers; both are "" for an online call.
	BatchID, CustomID string
}

// Fault is how one call is answered instead of (or on the way to) the normal
// answer. The zero Fault means the normal answer.
type Fault struct {
	// Status, if not 0, answers with this status. The body is Body when not
	// empty, else an OpenAI-style error for the status; a 2xx status with an
	// empty Body gives the normal answer with that status.
	Status int
	Body   string
	// Header is set on the response, whatever it is (e.g. Retry-After).
	Header map[string]string
	// Reset closes the connection without answering (connection reset).
	Reset bool
	// Delay is waited before answering, after Config.Latency.
	Delay time.Duration
	// BadJSON answers 200 with a truncated JSON body (see Faults.BadJSON).
	BadJSON bool
	// CutAfterChunks, for a stream, closes the connection after that many
	// data events without [DONE]; for a plain answer, it sends the headers
	// (with the full Content-Length) and half of the body, then closes.
	CutAfterChunks int
	// KeepAliveOnly, for a stream, sends only ": keep-alive" comments every
	// 50ms until the client goes away; for a plain request it sends nothing
	// until the client goes away.
	KeepAliveOnly bool
	// StreamError, for a stream, is sent as a data event (an error chunk
	// such as {"error":{...}}) after the first two events, in place of the
	// rest of the answer; [DONE] follows. A plain request ignores it.
	StreamError string
}

func (f Fault) isZero() bool {
	return f.Status == 0 && f.Body == "" && len(f.Header) == 0 && !f.Reset &&
		f.Delay == 0 && !f.BadJSON && f.CutAfterChunks == 0 && !f.KeepAliveOnly && f.StreamError == ""
}

// pick draws the random fault of call n. Each kind has its own draw, so
// raising one rate does not move the calls another kind hits.
func (fs *Faults) pick(seed, n int64, stream bool) Fault {
	switch {
	case chance(seed, n, 1, fs.RateLimit):
		h := map[string]string{}
		if fs.RetryAfter != "" {
			h["Retry-After"] = fs.RetryAfter
		}
		if fs.RetryAfterMS != "" {
			h["retry-after-ms"] = fs.RetryAfterMS
		}
		return Fault{Status: 429, Header: h}
	case chance(seed, n, 2, fs.ServerError):
		return Fault{Status: 500}
	case chance(seed, n, 3, fs.Unavailable):
		return Fault{Status: 503}
	case chance(seed, n, 4, fs.Reset):
		return Fault{Reset: true}
	case chance(seed, n, 5, fs.Slow):
		return Fault{Delay: fs.SlowBy}
	case chance(seed, n, 6, fs.BadJSON):
		return Fault{BadJSON: true}
	case stream && chance(seed, n, 7, fs.CutStream):
		after := fs.CutAfter
		if after <= 0 {
			after = 2
		}
		return Fault{CutAfterChunks: after}
	}
	return Fault{}
}

// chance reports whether the draw of kind for call n falls under p. It is a
// pure function of its arguments, so it needs no lock on the hot path.
func chance(seed, n int64, kind uint64, p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	x := splitmix64(uint64(seed) ^ splitmix64(uint64(n)<<4|kind))
	return float64(x>>11)/(1<<53) < p
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// defaultError is the OpenAI-style error a fault with a bare Status gets.
func defaultError(status int) *apiError {
	e := &apiError{status: status, Type: "server_error"}
	e.Message = "fakeapi: injected " + strconv.Itoa(status)
	switch {
	case status == 429:
		e.Type, e.Code = "requests", "rate_limit_exceeded"
		e.Message = "Rate limit reached (fakeapi). Please try again later."
	case status == 402:
		e.Type, e.Code = "invalid_request_error", "insufficient_quota"
		e.Message = "Insufficient balance (fakeapi)."
	case status == 403:
		e.Type, e.Code = "invalid_request_error", "permission_denied"
	case status >= 400 && status < 500:
		e.Type = "invalid_request_error"
	}
	return e
}
