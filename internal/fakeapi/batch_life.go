package fakeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The statuses of a batch, as OpenAI names them.
const (
	statusValidating = "validating"
	statusFailed     = "failed"
	statusInProgress = "in_progress"
	statusFinalizing = "finalizing"
	statusCompleted  = "completed"
	statusExpired    = "expired"
	statusCancelling = "cancelling"
	statusCancelled  = "cancelled"
)

// batch is a provider batch. Its life is a function of its clock, worked
// out when a request asks about it rather than by a goroutine, so that it
// is deterministic under a test's clock and there is nothing to stop on
// Close: validation ends at created + delay/10 (the batch fails then if
// errs is set); the lines are answered in file order, evenly, until
// created + 9/10 delay (in_progress); it is finalizing until created +
// delay, then completed, or expired if a line was drawn to expire. A cancel
// at c stops the answering at c; the batch is cancelling until c +
// delay/10, then cancelled.
type batch struct {
	id, endpoint, inputFileID string
	window                    string // completion_window, as asked for
	metadata                  map[string]string
	created                   time.Time
	delay                     time.Duration
	rules                     batchRules
	errs                      []batchError // set: the batch fails validation
	lines                     []batchLine  // nil when errs is set
	expire                    []bool       // lines the batch never answers
	nExpire                   int

	mu                    sync.Mutex // guards the rest; held while lines are answered
	next                  int        // lines[:next] are answered or passed over as expiring
	answered              int        // lines answered
	output, errorOut      bytes.Buffer
	completed, failed     int
	cancelAt              time.Time
	ended                 bool
	outputFile, errorFile string
}

func (b *batch) validEnd() time.Time    { return b.created.Add(b.delay / 10) }
func (b *batch) answerEnd() time.Time   { return b.created.Add(b.delay - b.delay/10) }
func (b *batch) end() time.Time         { return b.created.Add(b.delay) }
func (b *batch) cancelledAt() time.Time { return b.cancelAt.Add(b.delay / 10) }

// statusAt is the batch's status at t; b.mu is held.
func (b *batch) statusAt(t time.Time) string {
	switch {
	case !b.cancelAt.IsZero() && t.Before(b.cancelledAt()):
		return statusCancelling
	case !b.cancelAt.IsZero():
		return statusCancelled
	case t.Before(b.validEnd()):
		return statusValidating
	case b.errs != nil:
		return statusFailed
	case t.Before(b.answerEnd()):
		return statusInProgress
	case t.Before(b.end()):
		return statusFinalizing
	case b.nExpire > 0:
		return statusExpired
	}
	return statusCompleted
}

// due is how many lines (of those not expiring) are answered by t.
func (b *batch) due(t time.Time) int {
	n := len(b.lines) - b.nExpire
	if !b.cancelAt.IsZero() && b.cancelAt.Before(t) {
		t = b.cancelAt
	}
	from, to := b.validEnd(), b.answerEnd()
	switch {
	case b.errs != nil || t.Before(from):
		return 0
	case !t.Before(to):
		return n
	}
	return min(n, int(math.Ceil(float64(n)*float64(t.Sub(from))/float64(to.Sub(from)))))
}

// advance brings the batch up to now and returns its object.
func (s *Server) advance(cfg *Config, b *batch, now time.Time) batchJSON {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.catchUp(cfg, b, now)
	return b.view(now, b.statusAt(now))
}

// cancel cancels the batch at now, after answering what was due by then.
// A batch that has ended otherwise cannot be cancelled (400); a batch
// cancelled already is answered as it is.
func (s *Server) cancel(cfg *Config, b *batch, now time.Time) (batchJSON, *apiError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.catchUp(cfg, b, now)
	switch st := b.statusAt(now); st {
	case statusCompleted, statusFailed, statusExpired:
		return batchJSON{}, badRequest("", "Cannot cancel a batch with status "+st+".")
	case statusValidating, statusInProgress, statusFinalizing:
		b.cancelAt = now
		s.catchUp(cfg, b, now) // with no delay, it is cancelled at once
	}
	return b.view(now, b.statusAt(now)), nil
}

// catchUp answers the lines due by now and, when the batch has ended,
// writes its files; b.mu is held.
func (s *Server) catchUp(cfg *Config, b *batch, now time.Time) {
	if b.ended {
		return
	}
	for due := b.due(now); b.answered < due; b.next++ {
		if !b.expire[b.next] {
			s.answerLine(cfg, b, b.lines[b.next])
			b.answered++
		}
	}
	switch st := b.statusAt(now); st {
	case statusCompleted, statusExpired, statusCancelled:
		s.finish(b, st)
	case statusFailed:
		b.ended = true
	}
}

// finish writes the batch's output and error files, each only when it has
// a line, as OpenAI does. An expired batch lists every line it never
// answered in its error file, and counts them as failed.
func (s *Server) finish(b *batch, status string) {
	b.ended = true
	at := b.end()
	if status == statusCancelled {
		at = b.cancelledAt()
	}
	if status == statusExpired {
		for i, l := range b.lines {
			if b.expire[i] {
				n := strconv.FormatInt(s.seq.Add(1), 10)
				writeLine(&b.errorOut, outputLine{ID: "batch_req_" + n, CustomID: l.customID, Error: &outputError{
					Code: "batch_expired", Message: "This request could not be executed before the completion window expired."}})
				b.failed++
			}
		}
	}
	if b.output.Len() > 0 {
		b.outputFile = s.api.addFile(b.id+"_output.jsonl", "batch_output", at, b.output.Bytes()).id
	}
	if b.errorOut.Len() > 0 {
		b.errorFile = s.api.addFile(b.id+"_error.jsonl", "batch_output", at, b.errorOut.Bytes()).id
	}
}

// outputLine is a line of an output or error file.
type outputLine struct {
	ID       string        `json:"id"`
	CustomID string        `json:"custom_id"`
	Response *lineResponse `json:"response"`
	Error    *outputError  `json:"error"`
}

type lineResponse struct {
	StatusCode int             `json:"status_code"`
	RequestID  string          `json:"request_id"`
	Body       json.RawMessage `json:"body"`
}

type outputError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeLine(buf *bytes.Buffer, l outputLine) {
	b, err := json.Marshal(l)
	if err != nil {
		panic(err) // bodies are valid JSON: the fake's own answers, or checked
	}
	buf.Write(b)
	buf.WriteByte('\n')
}

// answerLine answers one line as the online endpoint would, into the
// output file when the answer is 2xx and into the error file otherwise.
func (s *Server) answerLine(cfg *Config, b *batch, l batchLine) {
	n := s.seq.Add(1)
	a := s.lineAnswer(cfg, b, l, n)
	id := strconv.FormatInt(n, 10)
	out := outputLine{ID: "batch_req_" + id, CustomID: l.customID,
		Response: &lineResponse{StatusCode: a.status, RequestID: "req_" + id, Body: a.body}}
	ok := a.status >= 200 && a.status <= 299
	if ok {
		writeLine(&b.output, out)
		b.completed++
	} else {
		writeLine(&b.errorOut, out)
		b.failed++
	}
	if a.served {
		s.stats.serve(a.key, a.usage)
	}
	s.stats.batchLine(l.customID, ok)
}

// answer is how a batch answers one line.
type answer struct {
	status int
	body   json.RawMessage
	served bool // a normal 2xx answer, counted as Stats.Served
	key    string
	usage  Usage
}

func errorAnswer(e *apiError) answer { return answer{status: e.status, body: e.body()} }

// lineAnswer is the answer to line l, call number n, in the order the
// online endpoint decides it: the endpoint, the body, then Config.Script.
// Faults with no meaning in a file (resets, delays, cut or damaged bodies)
// are ignored; the random Config.Faults do not apply.
func (s *Server) lineAnswer(cfg *Config, b *batch, l batchLine, n int64) answer {
	if l.url != b.endpoint {
		return errorAnswer(badRequest("url", fmt.Sprintf("The url %s of this request is not the batch's endpoint %s.", l.url, b.endpoint)))
	}
	ep, _ := route(l.url)
	req, apiErr := parseRequest(ep, l.body)
	if apiErr != nil {
		return errorAnswer(apiErr)
	}
	if req.Stream && b.rules.refuseStream {
		return errorAnswer(badRequest("stream", "stream is not supported in batch"))
	}
	var f Fault
	if cfg.Script != nil {
		f = cfg.Script(Call{N: n, Path: l.url, Body: l.body, CustomKey: req.key, Attempt: s.attempt(l.body),
			Stream: req.Stream, Model: req.Model, BatchID: b.id, CustomID: l.customID})
	}
	if f.Status != 0 && (f.Status < 200 || f.Status > 299 || f.Body != "") {
		return faultAnswer(f)
	}
	a := answer{status: http.StatusOK, served: true, key: req.key}
	if f.Status != 0 {
		a.status = f.Status
	}
	if req.emb != nil {
		a.body, a.usage = req.emb.body(cfg.FloatUsage), req.emb.served()
		return a
	}
	rep := newReply(req, n, cfg.createdNow().Unix(), isReasoning(cfg, req.Model)).styled(cfg)
	a.body, a.usage = rep.body(), rep.served()
	return a
}

// faultAnswer is the answer a Script's fault gives: its Body (as a JSON
// string when it is not JSON) or the error of its status.
func faultAnswer(f Fault) answer {
	if f.Body == "" {
		return errorAnswer(defaultError(f.Status))
	}
	body := json.RawMessage(f.Body)
	if !json.Valid(body) {
		body, _ = json.Marshal(f.Body)
	}
	return answer{status: f.Status, body: body}
}
