package fakeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"
)

const batchKey = "sk-batch-test"

// apiCall sends a request with the test key (when key is not "") and reads
// the whole answer.
func apiCall(ctx context.Context, t *testing.T, s *Server, method, path, contentType, key string, body io.Reader) (response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, s.URL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}, err
}

// mustCall is apiCall with the test key for calls that must answer want.
func mustCall(t *testing.T, s *Server, method, path, jsonBody string, want int) []byte {
	t.Helper()
	var body io.Reader
	ct := ""
	if jsonBody != "" {
		body, ct = strings.NewReader(jsonBody), "application/json"
	}
	res, err := apiCall(context.Background(), t, s, method, path, ct, batchKey, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if res.status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.status, want, res.body)
	}
	return res.body
}

// multipartUpload is the body and content type of an upload of content
// named filename with purpose.
func multipartUpload(t *testing.T, purpose, filename, content string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if purpose != "" {
		if err := mw.WriteField("purpose", purpose); err != nil {
			t.Fatal(err)
		}
	}
	if filename != "" {
		fw, err := mw.CreateFormFile("file", filename)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(fw, content)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

// testFile is what the tests read of a file object.
type testFile struct {
	ID, Object, Filename, Purpose, Status string
	Bytes                                 int
	CreatedAt                             int64 `json:"created_at"`
}

// uploadInput uploads content as a batch input file.
func uploadInput(t *testing.T, s *Server, content string) testFile {
	t.Helper()
	body, ct := multipartUpload(t, "batch", "input.jsonl", content)
	res, err := apiCall(context.Background(), t, s, http.MethodPost, "/files", ct, batchKey, body)
	if err != nil || res.status != http.StatusOK {
		t.Fatalf("upload: %v %d %s", err, res.status, res.body)
	}
	var f testFile
	mustUnmarshal(t, res.body, &f)
	return f
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

// testBatch is what the tests read of a batch object.
type testBatch struct {
	ID           string
	Status       string
	Errors       *struct{ Data []json.RawMessage }
	OutputFileID *string `json:"output_file_id"`
	ErrorFileID  *string `json:"error_file_id"`
	Counts       struct {
		Total, Completed, Failed int
	} `json:"request_counts"`
	Metadata map[string]string
}

func (b testBatch) ended() bool {
	switch b.Status {
	case "completed", "failed", "expired", "cancelled":
		return true
	}
	return false
}

// createBatch creates a batch of the file for endpoint (a "/v1/..." path).
func createBatch(t *testing.T, s *Server, fileID, endpoint string, metadata map[string]string) testBatch {
	t.Helper()
	in, _ := json.Marshal(map[string]any{"input_file_id": fileID, "endpoint": endpoint, "completion_window": "24h", "metadata": metadata})
	var b testBatch
	mustUnmarshal(t, mustCall(t, s, http.MethodPost, "/batches", string(in), http.StatusOK), &b)
	return b
}

func getBatch(t *testing.T, s *Server, id string) testBatch {
	t.Helper()
	var b testBatch
	mustUnmarshal(t, mustCall(t, s, http.MethodGet, "/batches/"+id, "", http.StatusOK), &b)
	return b
}

// waitBatch polls the batch until it ends.
func waitBatch(t *testing.T, s *Server, id string) testBatch {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b := getBatch(t, s, id)
		if b.ended() {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %s still %s", id, b.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runBatch uploads the lines, creates a batch for endpoint and waits for
// its end.
func runBatch(t *testing.T, s *Server, endpoint string, lines ...string) testBatch {
	t.Helper()
	f := uploadInput(t, s, strings.Join(lines, "\n")+"\n")
	return waitBatch(t, s, createBatch(t, s, f.ID, endpoint, nil).ID)
}

// testLine is a line of an output or error file.
type testLine struct {
	ID       string `json:"id"`
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *struct{ Code, Message string } `json:"error"`
	raw   string
}

// fileLines downloads a file and parses its lines; a nil id is no lines.
func fileLines(t *testing.T, s *Server, id *string) []testLine {
	t.Helper()
	if id == nil {
		return nil
	}
	var out []testLine
	for _, l := range strings.Split(strings.TrimSuffix(string(mustCall(t, s, http.MethodGet, "/files/"+*id+"/content", "", http.StatusOK)), "\n"), "\n") {
		tl := testLine{raw: l}
		mustUnmarshal(t, []byte(l), &tl)
		out = append(out, tl)
	}
	return out
}

// byCustomID indexes lines by custom_id, failing on a repeated one.
func byCustomID(t *testing.T, lines ...[]testLine) map[string]testLine {
	t.Helper()
	out := map[string]testLine{}
	for _, ls := range lines {
		for _, l := range ls {
			if _, dup := out[l.CustomID]; dup {
				t.Errorf("custom_id %s in two lines", l.CustomID)
			}
			out[l.CustomID] = l
		}
	}
	return out
}

// inputLine is a line of an input file.
func inLine(customID, url, body string) string {
	return `{"custom_id":"` + customID + `","method":"POST","url":"` + url + `","body":` + body + `}`
}

// withoutID is an answer body without its "id", which differs between an
// online and a batch answer (both carry their call number).
func withoutID(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	mustUnmarshal(t, body, &m)
	delete(m, "id")
	return m
}
