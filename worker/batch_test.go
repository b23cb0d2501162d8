package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
)

// The batch runner's tests: the lines it writes, the decisions it takes on
// each line of an output or error file, and whole runs against the fake's
// files and batches endpoints with a real store.

func TestBatchLine(t *testing.T) {
	tests := []struct {
		name     string
		req      jobs.Request
		url      string
		wantBody string // compared as JSON; "" means byte for byte the request's
	}{
		{"ChatStreamRemoved", jobs.Request{CustomID: "a", Endpoint: jobs.EndpointChat,
			Body: []byte(`{"model":"m", "stream":true,"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true},"max_tokens":5}`)},
			"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":5}`},
		{"ChatNoStream", jobs.Request{CustomID: "b", Endpoint: jobs.EndpointChat,
			Body: []byte(`{"model":"m","messages":[{"role":"user","content":"caf\u00e9"}]}`)},
			"/v1/chat/completions", ""},
		{"CompletionsStreamFalse", jobs.Request{CustomID: "c", Endpoint: jobs.EndpointCompletions,
			Body: []byte(`{"stream":false,"model":"m","prompt":"p"}`)},
			"/v1/completions", `{"model":"m","prompt":"p"}`},
		{"EmbeddingsUntouched", jobs.Request{CustomID: "d", Endpoint: jobs.EndpointEmbeddings,
			Body: []byte(`{ "model" : "e", "input":["x","y"], "encoding_format":"base64", "stream":true }`)},
			"/v1/embeddings", ""},
		{"CustomIDEscaped", jobs.Request{CustomID: "q\"uote\\ \n<é>\u2028", Endpoint: jobs.EndpointChat,
			Body: []byte(`{"model":"m","messages":[]}`)},
			"/v1/chat/completions", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, err := batchLine(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
				t.Fatalf("line %q is not one line ending in a newline", line)
			}
			var got struct {
				CustomID string          `json:"custom_id"`
				Method   string          `json:"method"`
				URL      string          `json:"url"`
				Body     json.RawMessage `json:"body"`
			}
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			if got.CustomID != tt.req.CustomID || got.Method != "POST" || got.URL != tt.url {
				t.Errorf("custom_id %q, method %q, url %q; want %q, POST, %q", got.CustomID, got.Method, got.URL, tt.req.CustomID, tt.url)
			}
			if tt.wantBody == "" {
				if !bytes.Equal(got.Body, tt.req.Body) {
					t.Errorf("body %s, want the request's byte for byte: %s", got.Body, tt.req.Body)
				}
				return
			}
			if !jsonEqual(t, got.Body, []byte(tt.wantBody)) {
				t.Errorf("body %s, want %s", got.Body, tt.wantBody)
			}
		})
	}
}

func TestBatchLineNotObject(t *testing.T) {
	_, err := batchLine(jobs.Request{CustomID: "x", Endpoint: jobs.EndpointChat, Body: []byte(`[1]`)})
	if err == nil || !strings.Contains(err.Error(), "x") {
		t.Errorf("batchLine of a body that is no object: %v, want an error naming the request", err)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// outcomeRunner is a BatchRunner for outcome alone: its client never
// calls anything.
func outcomeRunner(maxAttempts int) *BatchRunner {
	c := NewClient(ClientOptions{BaseURL: "http://127.0.0.1:9/v1", APIKey: testKey, Timeout: time.Second})
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return NewBatchRunner(nil, 1, c, BatchOptions{MaxAttempts: maxAttempts, Now: func() time.Time { return now }})
}

// outcomeBatch is the batch the outcome tests' lines come from.
var outcomeBatch = jobs.ProviderBatch{ID: 7, JobID: 1, State: jobs.BatchEnded,
	CreatedAt: time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC)}

// chatOK is a chat completion as a provider may format it: spaces, an
// escaped character, members in its own order; it must be kept as sent.
const chatOK = `{"id":"chatcmpl-9", "object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"h\u00e9llo"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}`

func outputLineOf(id string, status int, body string) string {
	return fmt.Sprintf(`{"id":"batch_req_1","custom_id":%q,"response":{"status_code":%d,"request_id":"req_9","body":%s},"error":null}`, id, status, body)
}

func errorLineOf(id, code string) string {
	return fmt.Sprintf(`{"id":"batch_req_2","custom_id":%q,"response":null,"error":{"code":%q,"message":"it ended"}}`, id, code)
}

const errBody = `{"error":{"message":"nope","type":"x","param":null,"code":null}}`

func TestBatchOutcome(t *testing.T) {
	const maxAttempts = 3
	tests := []struct {
		name       string
		line       string
		attempts   int // the request's before the line
		next       jobs.Status
		class      jobs.ErrorClass
		status     int
		count      bool // uses an attempt
		fatal      bool
		endpoint   jobs.Endpoint
		wantResult bool
	}{
		{name: "Succeeded", line: outputLineOf("r", 200, chatOK), next: jobs.StatusSucceeded, status: 200, count: true, wantResult: true},
		{name: "SucceededLastAttempt", line: outputLineOf("r", 200, chatOK), attempts: maxAttempts - 1, next: jobs.StatusSucceeded, status: 200, count: true, wantResult: true},
		{name: "Embeddings", line: outputLineOf("r", 200, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-1]}],"model":"e","usage":{"prompt_tokens":3,"total_tokens":3}}`),
			endpoint: jobs.EndpointEmbeddings, next: jobs.StatusSucceeded, status: 200, count: true, wantResult: true},
		{name: "BadRequest", line: outputLineOf("r", 400, errBody), next: jobs.StatusFailed, class: jobs.ClassInvalidRequest, status: 400, count: true},
		{name: "NotFound", line: outputLineOf("r", 404, errBody), next: jobs.StatusFailed, class: jobs.ClassInvalidRequest, status: 404, count: true},
		{name: "RateLimited", line: outputLineOf("r", 429, errBody), next: jobs.StatusPending, class: jobs.ClassRateLimited, status: 429, count: true},
		{name: "ServerError", line: outputLineOf("r", 500, errBody), next: jobs.StatusPending, class: jobs.ClassServer, status: 500, count: true},
		{name: "Expired", line: errorLineOf("r", "batch_expired"), next: jobs.StatusPending, class: jobs.ClassBatchExpired, count: true},
		{name: "OtherError", line: errorLineOf("r", "internal"), next: jobs.StatusPending, class: jobs.ClassServer, count: true},
		{name: "ServerErrorExhausted", line: outputLineOf("r", 503, errBody), attempts: maxAttempts - 1, next: jobs.StatusFailed, class: jobs.ClassServer, status: 503, count: true},
		{name: "ExpiredExhausted", line: errorLineOf("r", "batch_expired"), attempts: maxAttempts - 1, next: jobs.StatusFailed, class: jobs.ClassBatchExpired, count: true},
		{name: "Unauthorized", line: outputLineOf("r", 401, errBody), next: jobs.StatusPending, class: jobs.ClassAuth, status: 401, fatal: true},
		{name: "PaymentRequired", line: outputLineOf("r", 402, errBody), attempts: maxAttempts - 1, next: jobs.StatusPending, class: jobs.ClassPayment, status: 402, fatal: true},
		{name: "NotACompletion", line: outputLineOf("r", 200, `[1,2]`), next: jobs.StatusPending, class: jobs.ClassBadResponse, status: 200, count: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := outcomeRunner(maxAttempts)
			ep := tt.endpoint
			if ep == "" {
				ep = jobs.EndpointChat
			}
			req := jobs.Request{ID: 11, JobID: 1, CustomID: "r", Endpoint: ep, Model: "m", Attempts: tt.attempts, Status: jobs.StatusRunning}
			byID := map[string]jobs.Request{"r": req}
			o, ok := b.outcome(&outcomeBatch, []byte(tt.line), byID)
			if !ok {
				t.Fatalf("outcome of %s: not taken", tt.line)
			}
			if _, still := byID["r"]; still {
				t.Error("the request is still held after its line")
			}
			if o.Next != tt.next || o.CountAttempt != tt.count || o.Request.ID != req.ID {
				t.Errorf("next %s, count attempt %v, request %d; want %s, %v, %d", o.Next, o.CountAttempt, o.Request.ID, tt.next, tt.count, req.ID)
			}
			a := o.Attempt
			if a == nil || a.Number != tt.attempts+1 || a.ProviderBatch != outcomeBatch.ID || a.StatusCode != tt.status ||
				a.Class != tt.class || !a.StartedAt.Equal(outcomeBatch.CreatedAt) || a.Duration != time.Hour {
				t.Errorf("attempt %+v; want number %d of batch %d, status %d, class %q, from the batch's creation, 1h",
					a, tt.attempts+1, outcomeBatch.ID, tt.status, tt.class)
			}
			var fe *FatalError
			if gotFatal := errors.As(b.fatal, &fe); gotFatal != tt.fatal {
				t.Errorf("the run's fatal error %v, want one: %v", b.fatal, tt.fatal)
			} else if tt.fatal && fe.Failure.Class != tt.class {
				t.Errorf("fatal error of class %s, want %s", fe.Failure.Class, tt.class)
			}
			if tt.wantResult {
				checkBatchResult(t, o, tt.line)
				return
			}
			if o.Result != nil || o.Failure == nil || o.Failure.Class != tt.class || o.Failure.StatusCode != tt.status {
				t.Errorf("result %v, failure %+v; want no result and a failure of class %s, status %d", o.Result, o.Failure, tt.class, tt.status)
			}
		})
	}
}

// checkBatchResult checks the result of a succeeded line: the body byte
// for byte, its usage, the batch's ids.
func checkBatchResult(t *testing.T, o jobs.Outcome, line string) {
	t.Helper()
	var l struct {
		Response struct {
			Body json.RawMessage `json:"body"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		t.Fatal(err)
	}
	r := o.Result
	if r == nil || o.Failure != nil {
		t.Fatalf("result %v, failure %v; want a result", r, o.Failure)
	}
	if !bytes.Equal(r.Raw, l.Response.Body) {
		t.Errorf("Raw %s\nwant the body byte for byte: %s", r.Raw, l.Response.Body)
	}
	if r.StatusCode != 200 || r.ProviderRequestID != "req_9" || r.ProviderBatch != outcomeBatch.ID || !r.Usage.Known || r.Usage.TotalTokens == 0 {
		t.Errorf("result status %d, request id %q, batch %d, usage %+v; want 200, req_9, %d, known", r.StatusCode,
			r.ProviderRequestID, r.ProviderBatch, r.Usage, outcomeBatch.ID)
	}
	if o.Request.Endpoint == jobs.EndpointChat && (r.Content != "héllo" || r.Usage.PromptTokens != 4 || r.Usage.CompletionTokens != 2) {
		t.Errorf("content %q, usage %+v; want héllo, 4 + 2", r.Content, r.Usage)
	}
}

func TestBatchOutcomeNotTaken(t *testing.T) {
	tests := []struct{ name, line string }{
		{"NotJSON", `{"custom_id":"r",`},
		{"UnknownID", outputLineOf("other", 200, chatOK)},
		{"NoCustomID", `{"response":{"status_code":200,"body":{}}}`},
		{"Array", `[{"custom_id":"r"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := outcomeRunner(3)
			byID := map[string]jobs.Request{"r": {ID: 1, CustomID: "r", Endpoint: jobs.EndpointChat}}
			if o, ok := b.outcome(&outcomeBatch, []byte(tt.line), byID); ok {
				t.Errorf("outcome of %s taken: %+v", tt.line, o)
			}
			if len(byID) != 1 {
				t.Error("a line not taken let go of the request")
			}
		})
	}
	t.Run("Twice", func(t *testing.T) {
		b := outcomeRunner(3)
		byID := map[string]jobs.Request{"r": {ID: 1, CustomID: "r", Endpoint: jobs.EndpointChat}}
		line := []byte(outputLineOf("r", 200, chatOK))
		if _, ok := b.outcome(&outcomeBatch, line, byID); !ok {
			t.Fatal("the first line not taken")
		}
		if _, ok := b.outcome(&outcomeBatch, []byte(errorLineOf("r", "batch_expired")), byID); ok {
			t.Error("a second line of the same custom_id taken")
		}
	})
}

// batchJob stores n chat requests and returns the job's id.
func batchJob(t *testing.T, st jobs.Store, n int) int64 {
	t.Helper()
	return mustImport(t, st, n)
}

// newTestBatchRunner is a batch runner of the job against fake, polling
// fast, with its events kept in events (when not nil).
func newTestBatchRunner(st BatchStore, jobID int64, fake *fakeapi.Server, opts BatchOptions, events *eventLog) *BatchRunner {
	if opts.Poll == 0 {
		opts.Poll = 20 * time.Millisecond
	}
	if opts.JobName == "" {
		opts.JobName = "test"
	}
	if events != nil {
		opts.Event = events.add
	}
	return NewBatchRunner(st, jobID, newTestClient(fake.URL(), ClientOptions{Conns: 2}), opts)
}

// eventLog keeps a batch runner's events.
type eventLog struct {
	mu sync.Mutex
	es []BatchEvent
}

func (l *eventLog) add(e BatchEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.es = append(l.es, e)
}

func (l *eventLog) of(kind string) []BatchEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []BatchEvent
	for _, e := range l.es {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// checkAllAnswered checks that every request of the job succeeded with the
// fake's answer, and that the fake's batches answered each line once.
func checkAllAnswered(t *testing.T, st jobs.Store, jobID int64, fake *fakeapi.Server, n int) {
	t.Helper()
	recs := records(t, st, jobID)
	for i, r := range recs {
		if want := "echo: " + promptKey(i+1); r.Request.Status != jobs.StatusSucceeded || r.Result == nil || r.Result.Content != want {
			t.Errorf("%s: %s, result %+v; want succeeded with %q", r.Request.CustomID, r.Request.Status, r.Result, want)
		}
	}
	if len(recs) != n {
		t.Errorf("%d records, want %d", len(recs), n)
	}
	stats := fake.Stats()
	if d := stats.BatchDuplicates(); len(d) > 0 || stats.BatchLinesOK != int64(n) {
		t.Errorf("batches answered %d lines (%d twice), want %d once each", stats.BatchLinesOK, len(d), n)
	}
}

// TestBatchRunSplitsWhenRefused: a provider that refuses a file of too
// many lines ("too_many_requests") gets the same requests again in files
// half as large, until they fit; every request is answered once.
func TestBatchRunSplitsWhenRefused(t *testing.T) {
	tests := []struct {
		name             string
		n, max, limit    int
		batches, refused int64
	}{
		{"Halved", 200, 200, 100, 1 + 2, 1},
		{"HalvedTwice", 400, 400, 100, 1 + 2 + 4, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := mustOpenStore(t)
			jobID := batchJob(t, st, tt.n)
			fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, BatchDelay: 50 * time.Millisecond, BatchMaxLines: tt.limit})
			events := &eventLog{}
			b := newTestBatchRunner(st, jobID, fake, BatchOptions{MaxRequests: tt.max}, events)
			if err := b.Run(context.Background()); err != nil {
				t.Fatalf("Run: %v", err)
			}
			checkAllAnswered(t, st, jobID, fake, tt.n)
			if got := fake.Stats().BatchesCreated; got != tt.batches {
				t.Errorf("%d batches created, want %d", got, tt.batches)
			}
			splits := events.of("split")
			if len(splits) == 0 || !strings.Contains(splits[0].Text, fmt.Sprintf("at most %d requests", tt.max/2)) {
				t.Errorf("split events %+v, want the first to say files of at most %d requests", splits, tt.max/2)
			}
			bs, err := st.Batches(context.Background(), jobID)
			if err != nil {
				t.Fatal(err)
			}
			for _, pb := range bs {
				if pb.ProviderStatus == "completed" && pb.Requests > tt.limit {
					t.Errorf("batch %d of %d requests completed, over the limit %d", pb.ID, pb.Requests, tt.limit)
				}
				if pb.State != jobs.BatchCollected {
					t.Errorf("batch %d is %s, want collected", pb.ID, pb.State)
				}
			}
		})
	}
}

// TestBatchRunStopsOnRefusedKey: a line answered 401 stops the run with a
// FatalError once its batch is collected; that request stays pending
// with no attempt used, the others are recorded.
func TestBatchRunStopsOnRefusedKey(t *testing.T) {
	const n = 20
	st := mustOpenStore(t)
	jobID := batchJob(t, st, n)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, BatchDelay: 50 * time.Millisecond,
		Script: func(c fakeapi.Call) fakeapi.Fault {
			if c.CustomKey == promptKey(3) {
				return fakeapi.Fault{Status: 401}
			}
			return fakeapi.Fault{}
		}})
	err := newTestBatchRunner(st, jobID, fake, BatchOptions{}, nil).Run(context.Background())
	var fe *FatalError
	if !errors.As(err, &fe) || fe.Failure.Class != jobs.ClassAuth {
		t.Fatalf("Run: %v, want a FatalError of class auth", err)
	}
	for _, r := range records(t, st, jobID) {
		switch {
		case r.Request.CustomID == "req-3":
			if r.Request.Status != jobs.StatusPending || r.Request.Attempts != 0 {
				t.Errorf("req-3: %s after %d attempts, want pending with none used", r.Request.Status, r.Request.Attempts)
			}
		case r.Request.Status != jobs.StatusSucceeded:
			t.Errorf("%s: %s, want succeeded", r.Request.CustomID, r.Request.Status)
		}
	}
}

// TestBatchRunRetryableLines: lines answered 429, 5xx or batch_expired go
// back to pending with an attempt used, into the next batch without
// Fallback; a 400 fails.
func TestBatchRunRetryableLines(t *testing.T) {
	const n = 30
	st := mustOpenStore(t)
	jobID := batchJob(t, st, n)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, BatchDelay: 50 * time.Millisecond,
		Script: func(c fakeapi.Call) fakeapi.Fault {
			switch {
			case c.CustomKey == promptKey(1):
				return fakeapi.Fault{Status: 400}
			case c.Attempt > 1 || c.BatchID != "batch_1":
				return fakeapi.Fault{}
			case c.CustomKey == promptKey(2):
				return fakeapi.Fault{Status: 429}
			case c.CustomKey == promptKey(3):
				return fakeapi.Fault{Status: 500}
			}
			return fakeapi.Fault{}
		}})
	if err := newTestBatchRunner(st, jobID, fake, BatchOptions{}, nil).Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := map[string]struct {
		status   jobs.Status
		attempts int
	}{"req-1": {jobs.StatusFailed, 1}, "req-2": {jobs.StatusSucceeded, 2}, "req-3": {jobs.StatusSucceeded, 2}}
	for _, r := range records(t, st, jobID) {
		w, ok := want[r.Request.CustomID]
		if !ok {
			w.status, w.attempts = jobs.StatusSucceeded, 1
		}
		if r.Request.Status != w.status || r.Request.Attempts != w.attempts {
			t.Errorf("%s: %s after %d attempts, want %s after %d", r.Request.CustomID, r.Request.Status, r.Request.Attempts, w.status, w.attempts)
		}
	}
	if got := fake.Stats().BatchesCreated; got != 2 {
		t.Errorf("%d batches created, want 2: the retryable lines go into a second", got)
	}
}

// TestBatchFindFileAndBatch: the files and batches a killed run made are
// found again by the batch's key (the file's name, the batch's metadata)
// or by the input file, past the first page of batches.
func TestBatchFindFileAndBatch(t *testing.T) {
	ctx := context.Background()
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	c := newTestClient(fake.URL(), ClientOptions{})
	path := filepath.Join(t.TempDir(), "in.jsonl")
	line, _ := batchLine(jobs.Request{CustomID: "a", Endpoint: jobs.EndpointChat, Body: chatBody(testModel, "x")})
	if err := os.WriteFile(path, line, 0o600); err != nil {
		t.Fatal(err)
	}
	up, err := c.uploadFile(ctx, "llmbatch-test-key1.jsonl", path)
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.uploadFile(ctx, "llmbatch-test-key2.jsonl", path)
	if err != nil {
		t.Fatal(err)
	}
	f, found, err := c.findFile(ctx, "llmbatch-test-key1.jsonl")
	if err != nil || !found || f.ID != up.ID {
		t.Errorf("findFile: %+v, %v, %v; want %s", f, found, err, up.ID)
	}
	if _, found, err := c.findFile(ctx, "llmbatch-test-none.jsonl"); err != nil || found {
		t.Errorf("findFile of a name never uploaded: found %v, %v", found, err)
	}
	first, err := c.createBatch(ctx, up.ID, jobs.EndpointChat, "key1", DefaultBatchWindow)
	if err != nil {
		t.Fatal(err)
	}
	// 150 newer batches put the first on the second page of the list.
	for i := range 150 {
		if _, err := c.createBatch(ctx, other.ID, jobs.EndpointChat, fmt.Sprintf("other%d", i), DefaultBatchWindow); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, key, fileID string
		want              string
	}{
		{"ByKey", "key1", "", first.ID},
		{"ByFile", "none", up.ID, first.ID},
		{"Newest", "other149", "", ""},
		{"Neither", "none", "file-none", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, found, err := c.findBatch(ctx, tt.key, tt.fileID)
			switch {
			case err != nil:
				t.Fatal(err)
			case tt.want == "-" && found:
				t.Errorf("found %s, want none", b.ID)
			case tt.want == "-":
			case !found || (tt.want != "" && b.ID != tt.want) || b.Metadata["llmbatch_key"] != tt.key && tt.fileID == "":
				t.Errorf("found %v: %s (metadata %v), want %s", found, b.ID, b.Metadata, tt.want)
			}
		})
	}
}

// TestBatchRunReattaches: a batch a killed run stored and uploaded but
// never saw the answer of (state new), or created but never saw the
// answer of (state uploaded), is found at the provider and taken on: no
// second file, no second batch, every line answered once.
func TestBatchRunReattaches(t *testing.T) {
	for _, created := range []bool{false, true} {
		name := map[bool]string{false: "Uploaded", true: "Created"}[created]
		t.Run(name, func(t *testing.T) {
			const n = 12
			ctx := context.Background()
			st := mustOpenStore(t)
			jobID := batchJob(t, st, n)
			fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, BatchDelay: 50 * time.Millisecond})
			b := newTestBatchRunner(st, jobID, fake, BatchOptions{}, nil)
			pb := killedRunBatch(t, st, b, jobID, created)
			if err := b.Run(ctx); err != nil {
				t.Fatalf("Run: %v", err)
			}
			stats := fake.Stats()
			if stats.FilesUploaded != 1 || stats.BatchesCreated != 1 {
				t.Errorf("%d files uploaded, %d batches created; want 1 and 1: the run did not re-attach to %s",
					stats.FilesUploaded, stats.BatchesCreated, pb.Key)
			}
			checkAllAnswered(t, st, jobID, fake, n)
		})
	}
}

// killedRunBatch leaves what a run killed during the upload (or, with
// created, the create) of a batch of all the job's requests leaves: the
// batch stored with its requests, its file at the provider (and its
// batch), the store not told.
func killedRunBatch(t *testing.T, st jobs.Store, b *BatchRunner, jobID int64, created bool) jobs.ProviderBatch {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	if err := st.PendingRequests(ctx, jobID, func(r jobs.Request) error {
		ids = append(ids, r.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pb, err := st.CreateBatch(ctx, jobs.ProviderBatch{JobID: jobID, Key: newKey("test"), Endpoint: jobs.EndpointChat,
		Model: testModel, Requests: len(ids)}, ids)
	if err != nil {
		t.Fatal(err)
	}
	path, err := b.writeFile(ctx, &pb)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	up, err := b.client.uploadFile(ctx, pb.Key, path)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		pb.InputFileID, pb.State = up.ID, jobs.BatchUploaded
		if err := st.UpdateBatch(ctx, pb); err != nil {
			t.Fatal(err)
		}
		if _, err := b.client.createBatch(ctx, up.ID, jobs.EndpointChat, pb.Key, DefaultBatchWindow); err != nil {
			t.Fatal(err)
		}
	}
	return pb
}

// FuzzBatchOutputLine holds outcome, which reads each line of a batch's
// output and error files, to its contract whatever the provider wrote: no
// panic; a line is taken only for a request still held, which it lets go
// of; a taken line moves its request to succeeded with a result kept byte
// for byte, or to failed or pending with a classified failure, and makes
// an attempt of the batch. The seeds are in
// testdata/fuzz/FuzzBatchOutputLine.
func FuzzBatchOutputLine(f *testing.F) {
	f.Fuzz(func(t *testing.T, line []byte, attempts uint8, embeddings bool) {
		b := outcomeRunner(4)
		ep := jobs.EndpointChat
		if embeddings {
			ep = jobs.EndpointEmbeddings
		}
		req := jobs.Request{ID: 5, CustomID: "r", Endpoint: ep, Model: "m", Attempts: int(attempts % 4), Status: jobs.StatusRunning}
		byID := map[string]jobs.Request{"r": req}
		in := bytes.Clone(line)
		o, ok := b.outcome(&outcomeBatch, line, byID)
		if !bytes.Equal(line, in) {
			t.Fatal("outcome modified the line")
		}
		if _, held := byID["r"]; held == ok {
			t.Fatalf("taken %v, but the request held %v", ok, held)
		}
		if !ok {
			return
		}
		checkFuzzedOutcome(t, o, req)
	})
}

func checkFuzzedOutcome(t *testing.T, o jobs.Outcome, req jobs.Request) {
	t.Helper()
	if o.Request.ID != req.ID || o.Attempt == nil || o.Attempt.ProviderBatch != outcomeBatch.ID || o.Attempt.Number != req.Attempts+1 {
		t.Fatalf("outcome %+v of attempt %+v, want an attempt of batch %d at number %d", o, o.Attempt, outcomeBatch.ID, req.Attempts+1)
	}
	switch o.Next {
	case jobs.StatusSucceeded:
		if o.Result == nil || o.Failure != nil || !json.Valid(o.Result.Raw) || o.Result.ProviderBatch != outcomeBatch.ID || !o.CountAttempt {
			t.Fatalf("succeeded with result %+v, failure %v", o.Result, o.Failure)
		}
	case jobs.StatusFailed, jobs.StatusPending:
		if o.Result != nil || o.Failure == nil || o.Failure.Class == "" {
			t.Fatalf("%s with result %v, failure %+v; want a classified failure", o.Next, o.Result, o.Failure)
		}
		if o.Next == jobs.StatusFailed && o.Failure.Class.Disposition() != jobs.Permanent && req.Attempts+1 < 4 {
			t.Fatalf("failed by %s with attempts left", o.Failure.Class)
		}
		// Only an answer the request itself caused (a 4xx, or a 3xx, as
		// online) fails it for good; a line with no such HTTP status is
		// the provider's fault.
		if o.Failure.Class.Disposition() == jobs.Permanent && (o.Failure.StatusCode < 300 || o.Failure.StatusCode > 499) {
			t.Fatalf("failed for good (%s) by a line of status %d, not a 3xx or 4xx", o.Failure.Class, o.Failure.StatusCode)
		}
		if o.Failure.Class.Disposition() == jobs.Fatal && (o.Next != jobs.StatusPending || o.CountAttempt) {
			t.Fatalf("fatal %s: %s, count attempt %v; want pending, no attempt used", o.Failure.Class, o.Next, o.CountAttempt)
		}
	default:
		t.Fatalf("next %q", o.Next)
	}
}
