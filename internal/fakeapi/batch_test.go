package fakeapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/testclock"
)

const chatURL = "/v1/chat/completions"

// TestBatchLife follows a batch under a test clock from its upload to its
// output file: the objects at each step, the progress of request_counts,
// and the output lines.
func TestBatchLife(t *testing.T) {
	clock := testclock.New(time.Unix(1700000000, 0))
	s := Start(t, Config{Key: batchKey, Now: fixedNow, BatchClock: clock.Now, BatchDelay: time.Second})
	input := strings.Join([]string{
		inLine("c1", chatURL, chatBody("m", "one")),
		inLine("c2", chatURL, chatBody("m", "two words")),
		inLine("c3", chatURL, chatBody("m", "three")),
	}, "\n")
	up, ct := multipartUpload(t, "batch", "input.jsonl", input)
	res, err := apiCall(t.Context(), t, s, http.MethodPost, "/files", ct, batchKey, up)
	if err != nil || res.status != 200 {
		t.Fatalf("upload: %v %d %s", err, res.status, res.body)
	}
	assertJSON(t, res.body, fmt.Sprintf(`{"id":"file-1","object":"file","bytes":%d,"created_at":1700000000,
		"filename":"input.jsonl","purpose":"batch","status":"processed"}`, len(input)))

	created := mustCall(t, s, http.MethodPost, "/batches",
		`{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"job":"j1"}}`, 200)
	assertJSON(t, created, `{"id":"batch_1","object":"batch","endpoint":"/v1/chat/completions","errors":null,
		"input_file_id":"file-1","completion_window":"24h","status":"validating","output_file_id":null,"error_file_id":null,
		"created_at":1700000000,"in_progress_at":null,"expires_at":1700086400,"finalizing_at":null,"completed_at":null,
		"failed_at":null,"expired_at":null,"cancelling_at":null,"cancelled_at":null,
		"request_counts":{"total":0,"completed":0,"failed":0},"metadata":{"job":"j1"}}`)

	steps := []struct {
		at               time.Duration
		status           string
		total, completed int
	}{
		{50 * time.Millisecond, "validating", 0, 0},
		{100 * time.Millisecond, "in_progress", 3, 0},
		{500 * time.Millisecond, "in_progress", 3, 2},
		{900 * time.Millisecond, "finalizing", 3, 3},
		{time.Second, "completed", 3, 3},
	}
	for _, st := range steps {
		clock.Set(time.Unix(1700000000, 0).Add(st.at))
		b := getBatch(t, s, "batch_1")
		if b.Status != st.status || b.Counts.Total != st.total || b.Counts.Completed != st.completed || b.Counts.Failed != 0 {
			t.Errorf("at %v: %s %+v, want %s total %d completed %d", st.at, b.Status, b.Counts, st.status, st.total, st.completed)
		}
	}
	assertJSON(t, mustCall(t, s, http.MethodGet, "/batches/batch_1", "", 200), `{"id":"batch_1","object":"batch",
		"endpoint":"/v1/chat/completions","errors":null,"input_file_id":"file-1","completion_window":"24h","status":"completed",
		"output_file_id":"file-2","error_file_id":null,"created_at":1700000000,"in_progress_at":1700000000,"expires_at":1700086400,
		"finalizing_at":1700000000,"completed_at":1700000001,"failed_at":null,"expired_at":null,"cancelling_at":null,
		"cancelled_at":null,"request_counts":{"total":3,"completed":3,"failed":0},"metadata":{"job":"j1"}}`)

	var out testFile
	mustUnmarshal(t, mustCall(t, s, http.MethodGet, "/files/file-2", "", 200), &out)
	if out.Purpose != "batch_output" || out.Filename != "batch_1_output.jsonl" || out.CreatedAt != 1700000001 {
		t.Errorf("output file %+v", out)
	}
	file := "file-2"
	lines := fileLines(t, s, &file)
	if len(lines) != 3 || out.Bytes != len(strings.Join([]string{lines[0].raw, lines[1].raw, lines[2].raw}, "\n"))+1 {
		t.Fatalf("%d output lines of %d bytes", len(lines), out.Bytes)
	}
	for i, l := range lines {
		n := strings.TrimPrefix(l.ID, "batch_req_")
		want := fmt.Sprintf(`{"id":"batch_req_%s","custom_id":"c%d","response":{"status_code":200,"request_id":"req_%s","body":%s},"error":null}`,
			n, i+1, n, newReply(mustParse(t, chatEndpoint, chatBody("m", []string{"one", "two words", "three"}[i])), mustInt(t, n), 1700000000, false).body())
		if l.raw != want {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, l.raw, want)
		}
	}
	if st := waitIdle(t, s); st.FilesUploaded != 1 || st.BatchesCreated != 1 || st.BatchLines != 3 || st.BatchLinesOK != 3 ||
		st.Served != 3 || st.ServedByKey["two words"] != 1 || !reflect.DeepEqual(st.BatchAnswers(), map[string]int{"c1": 1, "c2": 1, "c3": 1}) {
		t.Errorf("stats %+v, batch answers %v", st, st.BatchAnswers())
	}
}

func mustParse(t *testing.T, ep endpoint, body string) *request {
	t.Helper()
	req, apiErr := parseRequest(ep, []byte(body))
	if apiErr != nil {
		t.Fatal(apiErr.Message)
	}
	return req
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBatchAnswersMatchOnline checks that each line of a batch is answered
// with the body the online endpoint gives for it, on every endpoint; a line
// that asks for a stream gets the plain answer.
func TestBatchAnswersMatchOnline(t *testing.T) {
	tests := []struct {
		endpoint string
		bodies   []string
	}{
		{"/v1/chat/completions", []string{chatBody("deepseek/deepseek-r1", "why sky"), chatBody("m", "a b c", `"max_tokens":2`),
			chatBody("m", "hi", `"n":2`), chatBody("m", "streamed", `"stream":true`)}},
		{"/v1/completions", []string{`{"model":"m","prompt":"a b"}`, `{"model":"m","prompt":[[1,2],[3]]}`}},
		{"/v1/embeddings", []string{`{"model":"e","input":["x","y z"],"encoding_format":"base64"}`, `{"model":"e","input":"hello","dimensions":3}`}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.endpoint, "/v1/"), func(t *testing.T) {
			s := Start(t, Config{Key: batchKey, Now: fixedNow, BatchDelay: -1, Style: StyleVLLM})
			lines := make([]string, len(tt.bodies))
			for i, b := range tt.bodies {
				lines[i] = inLine("r"+strconv.Itoa(i), tt.endpoint, b)
			}
			b := runBatch(t, s, tt.endpoint, lines...)
			if b.Status != "completed" || b.ErrorFileID != nil || b.Counts.Completed != len(lines) {
				t.Fatalf("batch %+v", b)
			}
			got := byCustomID(t, fileLines(t, s, b.OutputFileID))
			if st := waitIdle(t, s); st.Served != int64(len(lines)) || st.BatchLinesOK != int64(len(lines)) {
				t.Errorf("served %d, batch lines ok %d, want %d", st.Served, st.BatchLinesOK, len(lines))
			}
			for i, body := range tt.bodies {
				online := mustPost(t, s, strings.TrimPrefix(tt.endpoint, "/v1"), strings.Replace(body, `,"stream":true`, "", 1),
					"Authorization: Bearer "+batchKey)
				l := got["r"+strconv.Itoa(i)]
				if l.Response == nil || l.Response.StatusCode != 200 {
					t.Fatalf("line r%d: %s", i, l.raw)
				}
				if g, w := withoutID(t, l.Response.Body), withoutID(t, online.body); !reflect.DeepEqual(g, w) {
					t.Errorf("line r%d:\n got %s\nwant %s", i, l.Response.Body, online.body)
				}
			}
		})
	}
}

// TestBatchValidation checks each reason a batch fails validation, with
// the exact errors it lists, and that a file within the limits passes.
func TestBatchValidation(t *testing.T) {
	chat := func(id, model string) string { return inLine(id, chatURL, chatBody(model, "x")) }
	tests := []struct {
		name  string
		cfg   Config
		input []string
		want  string // the errors' data; "" for a batch that completes
	}{
		{"TooManyRequests", Config{BatchMaxLines: 2}, []string{chat("a", "m"), chat("b", "m"), chat("c", "m")},
			`[{"code":"too_many_requests","message":"The input file has 3 requests; a batch may hold at most 2.","param":null,"line":null}]`},
		{"AtMaxLines", Config{BatchMaxLines: 2}, []string{chat("a", "m"), chat("b", "m")}, ""},
		{"MixedModels", Config{BatchOneModel: true}, []string{chat("a", "m1"), chat("b", "m1"), chat("c", "m2"), chat("d", "m3")},
			`[{"code":"mixed_models","message":"All requests in a batch must use the same model: line 3 asks for m2, line 1 for m1.","param":null,"line":3}]`},
		{"OneModel", Config{BatchOneModel: true}, []string{chat("a", "m1"), chat("b", "m1")}, ""},
		{"MixedModelsAllowed", Config{}, []string{chat("a", "m1"), chat("b", "m2")}, ""},
		{"BadLines", Config{}, []string{chat("a", "m"), `{"custom_id":`, "", `{"method":"POST","url":"/v1/chat/completions","body":{}}`,
			chat("a", "m"), `{"custom_id":"e","method":"GET","url":"/v1/chat/completions","body":{}}`,
			`{"custom_id":"f","method":"POST","url":"/v1/chat/completions","body":"hi"}`, `{"custom_id":"g","method":"POST","body":{}}`},
			`[{"code":"invalid_json_line","message":"Line 2 is not a JSON object of a request.","param":null,"line":2},
			  {"code":"missing_required_parameter","message":"Line 4 has no custom_id.","param":"custom_id","line":4},
			  {"code":"duplicate_custom_id","message":"Line 5 repeats the custom_id \"a\" of line 1.","param":"custom_id","line":5},
			  {"code":"invalid_request","message":"Line 6: method must be POST, not \"GET\".","param":"method","line":6},
			  {"code":"invalid_request","message":"Line 7: body must be a JSON object.","param":"body","line":7},
			  {"code":"missing_required_parameter","message":"Line 8 has no url.","param":"url","line":8}]`},
		{"EmptyFile", Config{}, []string{"", "  "},
			`[{"code":"empty_file","message":"The input file has no requests.","param":null,"line":null}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Key, cfg.BatchDelay = batchKey, -1
			s := Start(t, cfg)
			b := runBatch(t, s, chatURL, tt.input...)
			if tt.want == "" {
				if b.Status != "completed" || b.Counts.Completed != len(tt.input) {
					t.Errorf("batch %+v, want completed", b)
				}
				return
			}
			if b.Status != "failed" || b.Errors == nil || b.OutputFileID != nil || b.ErrorFileID != nil || b.Counts.Total != 0 {
				t.Fatalf("batch %+v, want failed without files", b)
			}
			got, _ := json.Marshal(b.Errors.Data)
			assertJSON(t, got, tt.want)
			if st := waitIdle(t, s); st.BatchesCreated != 1 || st.BatchLines != 0 || st.Served != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestBatchWindow checks that a longer completion_window, as some
// providers ask for, is taken and echoed, with expires_at after it.
func TestBatchWindow(t *testing.T) {
	clock := testclock.New(time.Unix(1700000000, 0))
	s := Start(t, Config{Key: batchKey, BatchClock: clock.Now})
	f := uploadInput(t, s, inLine("a", chatURL, chatBody("m", "x")))
	var b struct {
		CompletionWindow string `json:"completion_window"`
		ExpiresAt        int64  `json:"expires_at"`
	}
	mustUnmarshal(t, mustCall(t, s, http.MethodPost, "/batches",
		`{"input_file_id":"`+f.ID+`","endpoint":"/v1/chat/completions","completion_window":"48h"}`, 200), &b)
	if b.CompletionWindow != "48h" || b.ExpiresAt != 1700000000+48*3600 {
		t.Errorf("window %q expires at %d", b.CompletionWindow, b.ExpiresAt)
	}
}

// TestBatchFailNth checks that only the Nth batch created fails, with
// invalid_file, whatever its file.
func TestBatchFailNth(t *testing.T) {
	s := Start(t, Config{Key: batchKey, BatchDelay: -1, BatchFailNth: 2})
	f := uploadInput(t, s, inLine("a", chatURL, chatBody("m", "x")))
	var statuses []string
	for i := 0; i < 3; i++ {
		statuses = append(statuses, waitBatch(t, s, createBatch(t, s, f.ID, chatURL, nil).ID).Status)
	}
	if want := []string{"completed", "failed", "completed"}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	b := mustCall(t, s, http.MethodGet, "/batches/batch_2", "", 200)
	var failed struct {
		Errors   any   `json:"errors"`
		FailedAt int64 `json:"failed_at"`
	}
	mustUnmarshal(t, b, &failed)
	got, _ := json.Marshal(failed.Errors)
	assertJSON(t, got, `{"object":"list","data":[{"code":"invalid_file","message":"The file could not be validated; please try again.","param":null,"line":null}]}`)
	if failed.FailedAt == 0 {
		t.Error("failed_at is null")
	}
	if st := s.Stats(); st.BatchesCreated != 3 || st.BatchLines != 2 || st.BatchAnswers()["a"] != 2 || len(st.BatchDuplicates()) != 1 {
		t.Errorf("stats %+v, answers %v", st, st.BatchAnswers())
	}
}

// TestBatchExpire checks that a fraction of lines is never answered, that
// the batch then ends expired with those lines as batch_expired errors,
// and that a resubmission draws its lines afresh.
func TestBatchExpire(t *testing.T) {
	const n = 40
	s := Start(t, Config{Key: batchKey, BatchDelay: -1, BatchExpireFraction: 0.3})
	lines := make([]string, n)
	for i := range lines {
		lines[i] = inLine("r"+strconv.Itoa(i), chatURL, chatBody("m", "p"+strconv.Itoa(i)))
	}
	f := uploadInput(t, s, strings.Join(lines, "\n"))
	expired := map[string][]string{}
	answered := 0
	for _, id := range []string{"batch_1", "batch_2"} {
		b := waitBatch(t, s, createBatch(t, s, f.ID, chatURL, nil).ID)
		out, errs := fileLines(t, s, b.OutputFileID), fileLines(t, s, b.ErrorFileID)
		if b.ID != id || b.Status != "expired" || len(byCustomID(t, out, errs)) != n {
			t.Fatalf("batch %+v with %d+%d lines", b, len(out), len(errs))
		}
		for _, l := range errs {
			want := `{"id":"` + l.ID + `","custom_id":"` + l.CustomID + `","response":null,"error":{"code":"batch_expired","message":"This request could not be executed before the completion window expired."}}`
			if l.raw != want || !strings.HasPrefix(l.ID, "batch_req_") {
				t.Errorf("error line %s, want %s", l.raw, want)
			}
			if !(batchRules{expire: 0.3}).expires(id, l.CustomID) {
				t.Errorf("%s expired in %s but was not drawn", l.CustomID, id)
			}
			expired[id] = append(expired[id], l.CustomID)
		}
		if k := len(expired[id]); k == 0 || k == n || b.Counts != (struct{ Total, Completed, Failed int }{n, n - k, k}) {
			t.Errorf("%s: %d expired, counts %+v", id, k, b.Counts)
		}
		answered += len(out)
	}
	if reflect.DeepEqual(expired["batch_1"], expired["batch_2"]) {
		t.Errorf("both batches expired the same lines %v", expired["batch_1"])
	}
	st := s.Stats()
	if st.BatchLines != int64(answered) || st.BatchLinesFailed != 0 {
		t.Errorf("batch lines %d (%d failed), want %d answered", st.BatchLines, st.BatchLinesFailed, answered)
	}
	if id := expired["batch_1"][0]; st.BatchAnswers()[id] > 1 {
		t.Errorf("%s expired in batch_1 but answered %d times", id, st.BatchAnswers()[id])
	}
}

// TestBatchErrorLines checks the lines answered with an error: a stream
// refused, a url that is not the batch's endpoint, a body the endpoint
// refuses and a Script's fault, each as the online endpoint answers.
func TestBatchErrorLines(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []Call
	)
	s := Start(t, Config{Key: batchKey, Now: fixedNow, BatchDelay: -1, BatchRefuseStream: true, Script: func(c Call) Fault {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, c)
		if c.CustomKey == "bad" {
			return Fault{Status: 400}
		}
		return Fault{}
	}})
	auth := "Authorization: Bearer " + batchKey
	b := runBatch(t, s, chatURL,
		inLine("ok", chatURL, chatBody("m", "fine")),
		inLine("stream", chatURL, chatBody("m", "s", `"stream":true`)),
		inLine("url", "/v1/completions", `{"model":"m","prompt":"p"}`),
		inLine("script", chatURL, chatBody("m", "bad")),
		inLine("parse", chatURL, `{"model":"m","messages":[]}`))
	if b.Status != "completed" || b.Counts.Completed != 1 || b.Counts.Failed != 4 {
		t.Fatalf("batch %+v", b)
	}
	if out := fileLines(t, s, b.OutputFileID); len(out) != 1 || out[0].CustomID != "ok" {
		t.Errorf("output %+v", out)
	}
	st := waitIdle(t, s)
	errs := byCustomID(t, fileLines(t, s, b.ErrorFileID))
	want := map[string]string{
		"stream": `{"error":{"message":"stream is not supported in batch","type":"invalid_request_error","param":"stream","code":null}}`,
		"url":    `{"error":{"message":"The url /v1/completions of this request is not the batch's endpoint /v1/chat/completions.","type":"invalid_request_error","param":"url","code":null}}`,
		"script": string(mustPost(t, s, "/chat/completions", chatBody("m", "bad"), auth).body),
		"parse":  string(mustPost(t, s, "/chat/completions", `{"model":"m","messages":[]}`, auth).body),
	}
	for id, body := range want {
		l := errs[id]
		n := strings.TrimPrefix(l.ID, "batch_req_")
		if w := `{"id":"batch_req_` + n + `","custom_id":"` + id + `","response":{"status_code":400,"request_id":"req_` + n + `","body":` + body + `},"error":null}`; l.raw != w {
			t.Errorf("line %s:\n got %s\nwant %s", id, l.raw, w)
		}
	}
	if st.BatchLinesOK != 1 || st.BatchLinesFailed != 4 || st.Served != 1 {
		t.Errorf("stats %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) < 2 || calls[0].BatchID != "batch_1" || calls[0].CustomID != "ok" || calls[0].Path != chatURL || calls[1].CustomID != "script" {
		t.Errorf("Script saw %+v, want the lines ok and script of batch_1 only, then online calls", calls)
	}
}

// TestBatchCancel checks that a cancel stops the answering at once, shows
// cancelling then cancelled, keeps the lines answered before it, and that
// an ended batch cannot be cancelled.
func TestBatchCancel(t *testing.T) {
	start := time.Unix(1700000000, 0)
	clock := testclock.New(start)
	s := Start(t, Config{Key: batchKey, BatchClock: clock.Now, BatchDelay: time.Second})
	lines := make([]string, 10)
	for i := range lines {
		lines[i] = inLine("r"+strconv.Itoa(i), chatURL, chatBody("m", "p"+strconv.Itoa(i)))
	}
	f := uploadInput(t, s, strings.Join(lines, "\n"))

	id := createBatch(t, s, f.ID, chatURL, nil).ID
	clock.Set(start.Add(500 * time.Millisecond))
	var b testBatch
	mustUnmarshal(t, mustCall(t, s, http.MethodPost, "/batches/"+id+"/cancel", "", 200), &b)
	if b.Status != "cancelling" || b.Counts.Completed != 5 {
		t.Errorf("after cancel: %+v", b)
	}
	clock.Set(start.Add(550 * time.Millisecond))
	if b = getBatch(t, s, id); b.Status != "cancelling" || b.Counts.Completed != 5 || b.OutputFileID != nil {
		t.Errorf("cancelling: %+v", b)
	}
	clock.Set(start.Add(600 * time.Millisecond))
	if b = getBatch(t, s, id); b.Status != "cancelled" || b.Counts.Completed != 5 || b.ErrorFileID != nil {
		t.Errorf("cancelled: %+v", b)
	}
	if out := fileLines(t, s, b.OutputFileID); len(out) != 5 || out[4].CustomID != "r4" {
		t.Errorf("output of the cancelled batch: %+v", out)
	}
	mustCall(t, s, http.MethodPost, "/batches/"+id+"/cancel", "", 200) // again: as it is
	clock.Set(start.Add(2 * time.Second))
	getBatch(t, s, id)
	if st := s.Stats(); st.BatchLines != 5 {
		t.Errorf("%d lines answered after the cancel, want 5", st.BatchLines)
	}

	done := createBatch(t, s, f.ID, chatURL, nil).ID
	clock.Set(start.Add(3 * time.Second))
	mustCall(t, s, http.MethodPost, "/batches/"+done+"/cancel", "", 400)

	early := createBatch(t, s, f.ID, chatURL, nil).ID
	mustCall(t, s, http.MethodPost, "/batches/"+early+"/cancel", "", 200)
	clock.Set(start.Add(3*time.Second + 100*time.Millisecond))
	if b = getBatch(t, s, early); b.Status != "cancelled" || b.Counts.Total != 0 || b.OutputFileID != nil {
		t.Errorf("cancelled while validating: %+v", b)
	}
}

// TestBatchList checks the pages of the batch list, newest first, and
// that a client finds its batches by metadata.
func TestBatchList(t *testing.T) {
	s := Start(t, Config{Key: batchKey, BatchDelay: -1})
	f := uploadInput(t, s, inLine("a", chatURL, chatBody("m", "x")))
	for i := 1; i <= 5; i++ {
		createBatch(t, s, f.ID, chatURL, map[string]string{"job": "j" + strconv.Itoa(i%2), "part": strconv.Itoa(i)})
	}
	type page struct {
		Data            []testBatch
		FirstID, LastID *string
		HasMore         bool `json:"has_more"`
	}
	list := func(query string) (ids []string, p page) {
		mustUnmarshal(t, mustCall(t, s, http.MethodGet, "/batches"+query, "", 200), &p)
		for _, b := range p.Data {
			ids = append(ids, b.ID)
		}
		return ids, p
	}
	tests := []struct {
		query   string
		want    []string
		hasMore bool
	}{
		{"?limit=2", []string{"batch_5", "batch_4"}, true},
		{"?limit=2&after=batch_4", []string{"batch_3", "batch_2"}, true},
		{"?limit=2&after=batch_2", []string{"batch_1"}, false},
		{"?after=batch_1", nil, false},
		{"", []string{"batch_5", "batch_4", "batch_3", "batch_2", "batch_1"}, false},
	}
	for _, tt := range tests {
		ids, p := list(tt.query)
		if !reflect.DeepEqual(ids, tt.want) || p.HasMore != tt.hasMore {
			t.Errorf("%q: %v has_more %v, want %v %v", tt.query, ids, p.HasMore, tt.want, tt.hasMore)
		}
	}
	_, p := list("")
	var mine []string
	for _, b := range p.Data {
		if b.Metadata["job"] == "j1" {
			mine = append(mine, b.Metadata["part"])
		}
		if b.Status != "completed" {
			t.Errorf("%s listed %s, want completed (a list advances the batches)", b.ID, b.Status)
		}
	}
	if want := []string{"5", "3", "1"}; !reflect.DeepEqual(mine, want) {
		t.Errorf("parts of job j1 %v, want %v", mine, want)
	}
	mustCall(t, s, http.MethodGet, "/batches?limit=0", "", 400)
	mustCall(t, s, http.MethodGet, "/batches?limit=x", "", 400)
	mustCall(t, s, http.MethodGet, "/batches?after=batch_9", "", 404)
}

// TestBatchConcurrentPolls has many clients poll and list a batch while it
// runs: every line is answered once.
func TestBatchConcurrentPolls(t *testing.T) {
	const n = 200
	s := Start(t, Config{Key: batchKey, BatchDelay: 100 * time.Millisecond})
	lines := make([]string, n)
	for i := range lines {
		lines[i] = inLine("r"+strconv.Itoa(i), chatURL, chatBody("m", "p"+strconv.Itoa(i)))
	}
	id := createBatch(t, s, uploadInput(t, s, strings.Join(lines, "\n")).ID, chatURL, nil).ID
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := "/batches/" + id
			if w%2 == 1 {
				path = "/batches"
			}
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				res, err := apiCall(t.Context(), t, s, http.MethodGet, path, "", batchKey, nil)
				if err != nil || res.status != 200 {
					t.Errorf("GET %s: %v %d", path, err, res.status)
					return
				}
				if strings.Contains(string(res.body), `"status":"completed"`) {
					return
				}
			}
		}()
	}
	wg.Wait()
	b := waitBatch(t, s, id)
	got := byCustomID(t, fileLines(t, s, b.OutputFileID))
	st := s.Stats()
	if len(got) != n || st.BatchLines != n || len(st.BatchAnswers()) != n || len(st.BatchDuplicates()) != 0 {
		t.Errorf("%d output lines, %d answered, %d ids, duplicates %v", len(got), st.BatchLines, len(st.BatchAnswers()), st.BatchDuplicates())
	}
}
