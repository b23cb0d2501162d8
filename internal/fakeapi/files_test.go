package fakeapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestFilesUpload checks that an upload keeps the bytes and the filename,
// is listed by purpose and read back whole.
func TestFilesUpload(t *testing.T) {
	s := Start(t, Config{Key: batchKey, BatchDelay: -1})
	const content = "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}}\n"
	body, ct := multipartUpload(t, "batch", "job-7 part 1.jsonl", content)
	res, err := apiCall(context.Background(), t, s, http.MethodPost, "/files", ct, batchKey, body)
	if err != nil || res.status != 200 {
		t.Fatalf("upload: %v %d %s", err, res.status, res.body)
	}
	var f testFile
	mustUnmarshal(t, res.body, &f)
	if f.ID != "file-1" || f.Object != "file" || f.Filename != "job-7 part 1.jsonl" || f.Purpose != "batch" ||
		f.Status != "processed" || f.Bytes != len(content) {
		t.Errorf("file %+v", f)
	}
	if got := string(mustCall(t, s, http.MethodGet, "/files/file-1/content", "", 200)); got != content {
		t.Errorf("content %q, want %q", got, content)
	}
	var again testFile
	mustUnmarshal(t, mustCall(t, s, http.MethodGet, "/files/file-1", "", 200), &again)
	if again != f {
		t.Errorf("GET file %+v, want %+v", again, f)
	}

	waitBatch(t, s, createBatch(t, s, "file-1", chatURL, nil).ID) // adds the output file-2
	tests := []struct{ query, want string }{
		{"?purpose=batch", "file-1"},
		{"?purpose=batch_output", "file-2"},
		{"", "file-2 file-1"},
	}
	for _, tt := range tests {
		var list struct {
			Object string
			Data   []testFile
		}
		mustUnmarshal(t, mustCall(t, s, http.MethodGet, "/files"+tt.query, "", 200), &list)
		var ids []string
		for _, f := range list.Data {
			ids = append(ids, f.ID)
		}
		if got := strings.Join(ids, " "); list.Object != "list" || got != tt.want {
			t.Errorf("%q lists %q, want %q", tt.query, got, tt.want)
		}
	}
	if st := s.Stats(); st.FilesUploaded != 1 {
		t.Errorf("files uploaded %d, want 1 (output files are not uploads)", st.FilesUploaded)
	}
}

// TestBatchAPIErrors checks the answers to requests the Batch API refuses.
func TestBatchAPIErrors(t *testing.T) {
	s := Start(t, Config{Key: batchKey, BatchDelay: -1})
	uploadInput(t, s, inLine("a", chatURL, chatBody("m", "x")))
	upload := func(purpose, filename string) func() (io.Reader, string) {
		return func() (io.Reader, string) {
			b, ct := multipartUpload(t, purpose, filename, "{}")
			return b, ct
		}
	}
	jsonBody := func(b string) func() (io.Reader, string) {
		return func() (io.Reader, string) { return strings.NewReader(b), "application/json" }
	}
	tests := []struct {
		name, method, path string
		body               func() (io.Reader, string)
		status             int
		allow              string
	}{
		{"NoPurpose", "POST", "/files", upload("", "f.jsonl"), 400, ""},
		{"OtherPurpose", "POST", "/files", upload("fine-tune", "f.jsonl"), 400, ""},
		{"NoFile", "POST", "/files", upload("batch", ""), 400, ""},
		{"NotMultipart", "POST", "/files", jsonBody(`{}`), 400, ""},
		{"UnknownFile", "GET", "/files/file-9", nil, 404, ""},
		{"UnknownContent", "GET", "/files/file-9/content", nil, 404, ""},
		{"UnknownBatch", "GET", "/batches/batch_9", nil, 404, ""},
		{"CancelUnknown", "POST", "/batches/batch_9/cancel", nil, 404, ""},
		{"CreateUnknownFile", "POST", "/batches", jsonBody(`{"input_file_id":"file-9","endpoint":"/v1/chat/completions","completion_window":"24h"}`), 404, ""},
		{"CreateBadEndpoint", "POST", "/batches", jsonBody(`{"input_file_id":"file-1","endpoint":"/v1/images","completion_window":"24h"}`), 400, ""},
		{"CreateShortWindow", "POST", "/batches", jsonBody(`{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"1h"}`), 400, ""},
		{"CreateOddWindow", "POST", "/batches", jsonBody(`{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h30m"}`), 400, ""},
		{"CreateNoWindow", "POST", "/batches", jsonBody(`{"input_file_id":"file-1","endpoint":"/v1/chat/completions"}`), 400, ""},
		{"CreateNoFile", "POST", "/batches", jsonBody(`{"endpoint":"/v1/chat/completions","completion_window":"24h"}`), 400, ""},
		{"CreateNotJSON", "POST", "/batches", jsonBody(`{`), 400, ""},
		{"CreateBadMetadata", "POST", "/batches", jsonBody(`{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"n":1}}`), 400, ""},
		{"DeleteFiles", "DELETE", "/files", nil, 405, "GET, POST"},
		{"PostFile", "POST", "/files/file-1", nil, 405, "GET"},
		{"GetCancel", "GET", "/batches/batch_1/cancel", nil, 405, "POST"},
		{"UnknownAction", "POST", "/batches/batch_1/retry", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			ct := ""
			if tt.body != nil {
				body, ct = tt.body()
			}
			res, err := apiCall(context.Background(), t, s, tt.method, tt.path, ct, batchKey, body)
			if err != nil || res.status != tt.status || res.header.Get("Allow") != tt.allow {
				t.Fatalf("%v: status %d Allow %q, want %d %q: %s", err, res.status, res.header.Get("Allow"), tt.status, tt.allow, res.body)
			}
			var e struct {
				Error struct{ Message, Type string }
			}
			mustUnmarshal(t, res.body, &e)
			if e.Error.Message == "" || e.Error.Type != "invalid_request_error" {
				t.Errorf("error body %s", res.body)
			}
		})
	}
	if st := s.Stats(); st.FilesUploaded != 1 || st.BatchesCreated != 0 {
		t.Errorf("refused requests counted: %+v", st)
	}
}

// TestBatchAPIAuth checks that every files and batches endpoint asks for
// the key, never repeats a wrong one, and does nothing without it.
func TestBatchAPIAuth(t *testing.T) {
	s := Start(t, Config{Key: batchKey, BatchDelay: -1})
	f := uploadInput(t, s, inLine("a", chatURL, chatBody("m", "x")))
	createBatch(t, s, f.ID, chatURL, nil)
	before := s.Stats()
	tests := []struct{ method, path string }{
		{"POST", "/files"}, {"GET", "/files"}, {"GET", "/files/file-1"}, {"GET", "/files/file-1/content"},
		{"POST", "/batches"}, {"GET", "/batches"}, {"GET", "/batches/batch_1"}, {"POST", "/batches/batch_1/cancel"},
	}
	for _, tt := range tests {
		for _, key := range []string{"", "sk-wrong-key-123"} {
			var body io.Reader
			ct := ""
			switch tt.path {
			case "/files":
				body, ct = multipartUpload(t, "batch", "f.jsonl", inLine("b", chatURL, chatBody("m", "y")))
			case "/batches":
				body, ct = strings.NewReader(`{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h"}`), "application/json"
			}
			res, err := apiCall(context.Background(), t, s, tt.method, tt.path, ct, key, body)
			if err != nil || res.status != 401 || strings.Contains(string(res.body), "wrong-key") {
				t.Errorf("%s %s with key %q: %v %d %s", tt.method, tt.path, key, err, res.status, res.body)
			}
		}
	}
	if st := s.Stats(); st.FilesUploaded != before.FilesUploaded || st.BatchesCreated != before.BatchesCreated {
		t.Errorf("unauthorized requests took effect: %+v", st)
	}
	if b := getBatch(t, s, "batch_1"); b.Status != "completed" {
		t.Errorf("batch %s after an unauthorized cancel", b.Status)
	}
}

// TestBatchRoute checks which paths reach the Batch API, behind any prefix.
func TestBatchRoute(t *testing.T) {
	tests := []struct {
		path string
		want apiRoute
		ok   bool
	}{
		{"/v1/files", apiRoute{kind: "files"}, true},
		{"/v3/openai/files/", apiRoute{kind: "files"}, true},
		{"/files/file-1", apiRoute{kind: "files", id: "file-1"}, true},
		{"/v1/files/file-1/content", apiRoute{kind: "files", id: "file-1", action: "content"}, true},
		{"/v1/batches", apiRoute{kind: "batches"}, true},
		{"/v1/batches/batch_1", apiRoute{kind: "batches", id: "batch_1"}, true},
		{"/v1/batches/batch_1/cancel", apiRoute{kind: "batches", id: "batch_1", action: "cancel"}, true},
		{"/v1/batches/batch_1/content", apiRoute{}, false},
		{"/v1/files/file-1/cancel", apiRoute{}, false},
		{"/v1/files//content", apiRoute{}, false},
		{"/v1/chat/completions", apiRoute{}, false},
		{"/v1/files/a/b/c", apiRoute{}, false},
	}
	for _, tt := range tests {
		got, ok := batchRoute(tt.path)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("batchRoute(%q) = %+v %v, want %+v %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}
