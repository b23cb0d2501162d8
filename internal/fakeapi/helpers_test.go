package fakeapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fixedNow makes the "created" field predictable.
func fixedNow() time.Time { return time.Unix(1700000000, 0) }

// response is what a test sees of one answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// post sends body to s at path ("/chat/completions" or "/completions") with
// optional "Name: value" headers, and reads the whole answer.
func post(t *testing.T, s *Server, path, body string, headers ...string) (response, error) {
	t.Helper()
	return postCtx(context.Background(), t, s, path, body, headers...)
}

func postCtx(ctx context.Context, t *testing.T, s *Server, path, body string, headers ...string) (response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}, err
}

// mustPost is post for calls that must get an answer.
func mustPost(t *testing.T, s *Server, path, body string, headers ...string) response {
	t.Helper()
	res, err := post(t, s, path, body, headers...)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return res
}

// chatBody is a chat request whose last user message is content.
func chatBody(model, content string, extra ...string) string {
	c, _ := json.Marshal(content)
	b := `{"model":"` + model + `","messages":[{"role":"user","content":` + string(c) + `}]`
	for _, e := range extra {
		b += "," + e
	}
	return b + "}"
}

// assertJSON compares got with the JSON text want, ignoring key order and
// spacing.
func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body:\n got %s\nwant %s", got, want)
	}
}

// sse is a parsed event stream.
type sse struct {
	data     []string // data payloads in order, "[DONE]" included
	comments int
	err      error // the read error that ended the stream, nil for a clean EOF
}

func readSSE(r io.Reader) sse {
	var out sse
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data: "):
			out.data = append(out.data, strings.TrimPrefix(line, "data: "))
		case strings.HasPrefix(line, ":"):
			out.comments++
		}
	}
	out.err = sc.Err()
	return out
}

// stream posts a stream request and parses the answer.
func stream(t *testing.T, s *Server, path, body string) (*http.Response, sse) {
	t.Helper()
	res, err := http.Post(s.URL()+path, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	return res, readSSE(res.Body)
}

// waitIdle waits until the server has no request in flight, so counters
// updated after the client saw its answer are final.
func waitIdle(t *testing.T, s *Server) Stats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.Stats()
		if st.InFlight == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still has %d requests in flight", st.InFlight)
		}
		time.Sleep(time.Millisecond)
	}
}
