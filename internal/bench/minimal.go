package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// minimalSpec is what a minimal client in a child process does (the binary
// and streams scenarios): the bench runs itself with -minimal-child, so
// that the client's CPU time and peak RSS are its own, as the llmbatch
// binary's are, from start to exit.
type minimalSpec struct {
	URL string `json:"url"`
	// Bodies is a file of the request bodies, written by writeBodies.
	Bodies      string `json:"bodies"`
	Concurrency int    `json:"concurrency"`
	// Stream reads each answer as server-sent events, a line at a time,
	// up to "data: [DONE]".
	Stream bool `json:"stream"`
}

// runMinimalChild is the child's side: it reads the bodies, sends them
// all, and fails on any error.
func runMinimalChild(spec string) error {
	var s minimalSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return err
	}
	reqs, err := readBodyFile(s.Bodies)
	if err != nil {
		return err
	}
	read := func(r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	}
	if s.Stream {
		read = readEvents
	}
	_, err = runMinimalWith(context.Background(), s.URL, reqs, s.Concurrency, read)
	return err
}

var errNoDone = errors.New("stream ended before data: [DONE]")

// readEvents reads a stream a line at a time until "data: [DONE]", as the
// simplest client of an SSE stream does, keeping nothing.
func readEvents(r io.Reader) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("data: [DONE]")) {
			return nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a line longer than the buffer: its rest follows
		}
		if err == io.EOF {
			return errNoDone
		}
		if err != nil {
			return err
		}
	}
}

// writeBodies writes the endpoint and body of each request, a line each,
// for the minimal client to read without parsing the input again.
func writeBodies(path string, reqs []jobs.Request) error {
	var b bytes.Buffer
	for _, r := range reqs {
		b.WriteString(string(r.Endpoint))
		b.WriteByte('\t')
		b.Write(r.Body) // compact JSON: no newline inside
		b.WriteByte('\n')
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// readBodyFile reads what writeBodies wrote.
func readBodyFile(path string) ([]jobs.Request, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var reqs []jobs.Request
	for line := range bytes.Lines(b) {
		ep, body, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\n")), []byte("\t"))
		if !ok {
			return nil, fmt.Errorf("%s: a line without a tab", path)
		}
		reqs = append(reqs, jobs.Request{Endpoint: jobs.Endpoint(ep), Body: body})
	}
	return reqs, nil
}

// minimalChild starts the minimal client as a child process of this one.
func minimalChild(ctx context.Context, s minimalSpec) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return startChild(ctx, self, nil, "-minimal-child", string(b))
}

// runChildOK waits for c and fails unless it exited with code 0.
func runChildOK(c *child, what string) (childResult, error) {
	res, err := c.wait()
	if err == nil && res.code != 0 {
		err = fmt.Errorf("%s: exit code %d:\n%s", what, res.code, c.output())
	}
	return res, err
}

// copyFile copies a database made once, so that each round starts from
// the same file.
func copyFile(dst, src string) error {
	removeDB(dst)
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}

// removeDB removes a database file and its WAL files, if any.
func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

// ms formats a duration in milliseconds or seconds.
func ms(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
