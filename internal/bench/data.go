package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/llmbatch/llmbatch/input"
	"github.com/llmbatch/llmbatch/jobs"
)

// writeInput writes n chat lines of about 300 bytes, the typical line of
// issue 4: bare bodies with a custom_id and metadata (which the import
// strips), each with its own user message so the fake counts them apart.
func writeInput(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	line := make([]byte, 0, 512)
	for i := range n {
		line = appendLine(line[:0], i+1)
		if _, err := w.Write(line); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func appendLine(b []byte, i int) []byte {
	b = append(b, `{"custom_id":"req-`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","model":"deepseek/deepseek-v3","messages":[{"role":"system","content":"You are a concise assistant."},`+
		`{"role":"user","content":"Summarise item `...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ` of the catalogue in one sentence, please, keeping the key facts."}],"temperature":0.7,"max_tokens":256,`+
		`"metadata":{"split":"train","row":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, "}}\n"...)
}

// readBodies reads the request bodies of an input file as the import would
// store them, for the minimal client to send.
func readBodies(path string) ([]jobs.Request, error) {
	r, err := input.Open(path, input.Options{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var reqs []jobs.Request
	for {
		req, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, jobs.Request{Endpoint: req.Endpoint, Body: req.Body})
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return reqs, nil
}
