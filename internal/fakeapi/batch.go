package fakeapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// apiRoute is a request to the files or batches endpoints.
type apiRoute struct {
	kind   string // "files" or "batches"
	id     string // "" for the collection
	action string // "content" (files), "cancel" (batches) or ""
}

// batchRoute finds a files or batches endpoint at the end of path, after
// any prefix, as route does for the online endpoints.
func batchRoute(path string) (apiRoute, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(segs) - 1; i >= max(0, len(segs)-3); i-- {
		rt := apiRoute{kind: segs[i]}
		if rt.kind != "files" && rt.kind != "batches" {
			continue
		}
		rest := segs[i+1:]
		if len(rest) == 0 {
			return rt, true
		}
		rt.id = rest[0]
		if len(rest) == 2 {
			rt.action = rest[1]
		}
		want := map[string]string{"files": "content", "batches": "cancel"}[rt.kind]
		return rt, rt.id != "" && (rt.action == "" || rt.action == want)
	}
	return apiRoute{}, false
}

// allows reports whether the endpoint takes method, and which it takes.
func (rt apiRoute) allows(method string) (bool, string) {
	switch {
	case rt.id == "":
		return method == http.MethodGet || method == http.MethodPost, "GET, POST"
	case rt.action == "cancel":
		return method == http.MethodPost, http.MethodPost
	}
	return method == http.MethodGet, http.MethodGet
}

// serveBatchAPI answers a request to the files or batches endpoints. Unlike
// the online endpoints, they meet no Latency, Faults or Script, and their
// bodies are not recorded.
func (s *Server) serveBatchAPI(w http.ResponseWriter, r *http.Request, cfg *Config, rt apiRoute) {
	if ok, allow := rt.allows(r.Method); !ok {
		w.Header().Set("Allow", allow)
		s.writeError(w, &apiError{status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
			Message: "Method " + r.Method + " not allowed; use " + allow + "."})
		return
	}
	if !s.authorized(w, r, cfg) {
		return
	}
	if rt.kind == "files" {
		s.serveFiles(w, r, cfg, rt)
		return
	}
	s.serveBatches(w, r, cfg, rt)
}

// authorized checks the bearer token against Config.Key, and answers 401
// when it differs.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, cfg *Config) bool {
	if cfg.Key == "" {
		return true
	}
	got := r.Header.Get("Authorization")
	if got == "Bearer "+cfg.Key {
		return true
	}
	s.writeError(w, unauthorized(got != ""))
	return false
}

func (s *Server) writeObject(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the fake's own types always marshal
	}
	s.writeBody(w, http.StatusOK, b)
}

// serveBatches answers POST and GET on batches, GET on batches/{id} and
// POST on batches/{id}/cancel.
func (s *Server) serveBatches(w http.ResponseWriter, r *http.Request, cfg *Config, rt apiRoute) {
	switch {
	case rt.id == "" && r.Method == http.MethodPost:
		s.createBatch(w, r, cfg)
		return
	case rt.id == "":
		s.listBatches(w, r, cfg)
		return
	}
	b := s.api.batch(rt.id)
	if b == nil {
		s.writeError(w, noSuch("Batch", rt.id))
		return
	}
	now := cfg.batchNow()
	if rt.action == "cancel" {
		view, apiErr := s.cancel(cfg, b, now)
		if apiErr != nil {
			s.writeError(w, apiErr)
			return
		}
		s.writeObject(w, view)
		return
	}
	s.writeObject(w, s.advance(cfg, b, now))
}

// batchEndpoints are the endpoints a batch may be created for.
var batchEndpoints = map[string]bool{"/v1/chat/completions": true, "/v1/completions": true, "/v1/embeddings": true}

type createBatchJSON struct {
	InputFileID      string            `json:"input_file_id"`
	Endpoint         string            `json:"endpoint"`
	CompletionWindow string            `json:"completion_window"`
	Metadata         map[string]string `json:"metadata"`
}

// createBatch creates a batch of an uploaded file. The file is parsed and
// validated now, and the outcome is shown when validation ends.
func (s *Server) createBatch(w http.ResponseWriter, r *http.Request, cfg *Config) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var in createBatchJSON
	if err != nil || json.Unmarshal(body, &in) != nil {
		s.writeError(w, badRequest("", "We could not parse the JSON body of your request."))
		return
	}
	f, apiErr := s.inputFile(in)
	if apiErr != nil {
		s.writeError(w, apiErr)
		return
	}
	lines, fileErrs := parseBatchInput(f.data)
	b := s.api.addBatch(in, cfg, lines, fileErrs)
	s.stats.batchesCreated.Add(1)
	b.mu.Lock()
	view := b.view(b.created, statusValidating)
	b.mu.Unlock()
	cfg.stall("create", b.id)
	s.writeObject(w, view)
}

// inputFile checks a create request and returns its input file.
func (s *Server) inputFile(in createBatchJSON) (*file, *apiError) {
	switch {
	case !batchEndpoints[in.Endpoint]:
		return nil, badRequest("endpoint", "endpoint must be /v1/chat/completions, /v1/completions or /v1/embeddings.")
	case windowOf(in.CompletionWindow) == 0:
		return nil, badRequest("completion_window", `completion_window must be "24h" (or whole hours up to "168h", as some providers take).`)
	case in.InputFileID == "":
		return nil, badRequest("input_file_id", "input_file_id is required.")
	}
	f := s.api.file(in.InputFileID)
	switch {
	case f == nil:
		return nil, noSuch("File", in.InputFileID)
	case f.purpose != "batch":
		return nil, badRequest("input_file_id", "The file "+f.id+` was not uploaded with purpose "batch".`)
	}
	return f, nil
}

// windowOf is the duration of a completion_window the fake takes: OpenAI's
// "24h", or whole hours up to a week ("48h" at Novita); 0 for another.
func windowOf(w string) time.Duration {
	d, err := time.ParseDuration(w)
	if err != nil || d < 24*time.Hour || d > 168*time.Hour || d%time.Hour != 0 || w != strconv.Itoa(int(d/time.Hour))+"h" {
		return 0
	}
	return d
}

// addBatch creates and stores a batch, under the rules of cfg now.
func (a *batchAPI) addBatch(in createBatchJSON, cfg *Config, lines []batchLine, fileErrs []batchError) *batch {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nBatches++
	rules := cfg.batchRules(a.nBatches)
	b := &batch{id: "batch_" + strconv.FormatInt(a.nBatches, 10), endpoint: in.Endpoint, inputFileID: in.InputFileID,
		window: in.CompletionWindow, metadata: in.Metadata, created: cfg.batchNow(), delay: cfg.batchDelay(), rules: rules}
	if b.errs = rules.validate(lines, fileErrs); b.errs == nil {
		b.lines, b.expire = lines, make([]bool, len(lines))
		for i, l := range lines {
			if b.expire[i] = rules.expires(b.id, l.customID); b.expire[i] {
				b.nExpire++
			}
		}
	}
	if a.batches == nil {
		a.batches = map[string]*batch{}
	}
	a.batches[b.id] = b
	a.batchIDs = append(a.batchIDs, b.id)
	return b
}

func (a *batchAPI) batch(id string) *batch {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.batches[id]
}

// page returns up to limit batches, newest first, from the one after the
// batch named after ("" for the newest), and whether more follow. It
// reports false if after names no batch.
func (a *batchAPI) page(after string, limit int) ([]*batch, bool, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := len(a.batchIDs) - 1
	if after != "" {
		if a.batches[after] == nil {
			return nil, false, false
		}
		for i >= 0 && a.batchIDs[i] != after {
			i--
		}
		i--
	}
	var out []*batch
	for ; i >= 0 && len(out) < limit; i-- {
		out = append(out, a.batches[a.batchIDs[i]])
	}
	return out, i >= 0, true
}

// listBatches answers GET batches?limit=N&after=ID: newest first, limit
// 1..100 (default 20).
func (s *Server) listBatches(w http.ResponseWriter, r *http.Request, cfg *Config) {
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			s.writeError(w, badRequest("limit", "limit must be between 1 and 100."))
			return
		}
		limit = n
	}
	page, more, ok := s.api.page(q.Get("after"), limit)
	if !ok {
		s.writeError(w, noSuch("Batch", q.Get("after")))
		return
	}
	now := cfg.batchNow()
	views := make([]batchJSON, len(page))
	for i, b := range page {
		views[i] = s.advance(cfg, b, now)
	}
	s.writeObject(w, newList(views, func(v batchJSON) string { return v.ID }, more))
}

// batchJSON is OpenAI's batch object; the times are Unix seconds, null
// until the batch gets there.
type batchJSON struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Endpoint         string            `json:"endpoint"`
	Errors           *errorsJSON       `json:"errors"`
	InputFileID      string            `json:"input_file_id"`
	CompletionWindow string            `json:"completion_window"`
	Status           string            `json:"status"`
	OutputFileID     *string           `json:"output_file_id"`
	ErrorFileID      *string           `json:"error_file_id"`
	CreatedAt        int64             `json:"created_at"`
	InProgressAt     *int64            `json:"in_progress_at"`
	ExpiresAt        *int64            `json:"expires_at"`
	FinalizingAt     *int64            `json:"finalizing_at"`
	CompletedAt      *int64            `json:"completed_at"`
	FailedAt         *int64            `json:"failed_at"`
	ExpiredAt        *int64            `json:"expired_at"`
	CancellingAt     *int64            `json:"cancelling_at"`
	CancelledAt      *int64            `json:"cancelled_at"`
	RequestCounts    countsJSON        `json:"request_counts"`
	Metadata         map[string]string `json:"metadata"`
}

type errorsJSON struct {
	Object string       `json:"object"`
	Data   []batchError `json:"data"`
}

type countsJSON struct {
	Total     int `json:"total"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
}

func unix(t time.Time) *int64 {
	u := t.Unix()
	return &u
}

func strOrNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// view is the batch object at now, in status; b.mu is held.
func (b *batch) view(now time.Time, status string) batchJSON {
	v := batchJSON{ID: b.id, Object: "batch", Endpoint: b.endpoint, InputFileID: b.inputFileID, CompletionWindow: b.window,
		Status: status, OutputFileID: strOrNull(b.outputFile), ErrorFileID: strOrNull(b.errorFile),
		CreatedAt: b.created.Unix(), ExpiresAt: unix(b.created.Add(windowOf(b.window))), Metadata: b.metadata,
		RequestCounts: countsJSON{Completed: b.completed, Failed: b.failed}}
	// reached: the batch got to time x before any cancel.
	reached := func(x time.Time) bool {
		return status != statusValidating && !now.Before(x) && (b.cancelAt.IsZero() || !b.cancelAt.Before(x))
	}
	if b.errs == nil && reached(b.validEnd()) {
		v.InProgressAt, v.RequestCounts.Total = unix(b.validEnd()), len(b.lines)
	}
	if b.errs == nil && reached(b.answerEnd()) {
		v.FinalizingAt = unix(b.answerEnd())
	}
	if !b.cancelAt.IsZero() {
		v.CancellingAt = unix(b.cancelAt)
	}
	switch status {
	case statusFailed:
		v.FailedAt, v.Errors = unix(b.validEnd()), &errorsJSON{Object: "list", Data: b.errs}
	case statusCompleted:
		v.CompletedAt = unix(b.end())
	case statusExpired:
		v.ExpiredAt = unix(b.end())
	case statusCancelled:
		v.CancelledAt = unix(b.cancelledAt())
	}
	return v
}
