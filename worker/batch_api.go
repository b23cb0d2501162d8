package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/llmbatch/llmbatch/jobs"
)

// The provider's Files and Batches API (OpenAI's shape, which Novita/PPIO,
// Together, Groq and others serve under the same base URL): an input file
// is uploaded to BASE/files, a batch of it created at BASE/batches, polled,
// and its output and error files read from BASE/files/ID/content.

// fileObject is what the provider says of an uploaded file.
type fileObject struct {
	ID       string `json:"id"`
	Filename string `json:"filename"`
	Bytes    int64  `json:"bytes"`
	Purpose  string `json:"purpose"`
}

// batchObject is what the provider says of a batch.
type batchObject struct {
	ID            string            `json:"id"`
	Status        string            `json:"status"`
	InputFileID   string            `json:"input_file_id"`
	OutputFileID  *string           `json:"output_file_id"`
	ErrorFileID   *string           `json:"error_file_id"`
	RequestCounts jobs.BatchCounts  `json:"request_counts"`
	Metadata      map[string]string `json:"metadata"`
	Errors        *struct {
		Data []batchErrorItem `json:"data"`
	} `json:"errors"`
}

// batchErrorItem is one of the reasons a batch failed validation.
type batchErrorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Line    *int   `json:"line"`
}

// final says whether the provider is done with the batch.
func (b batchObject) final() bool {
	switch b.Status {
	case "completed", "failed", "expired", "cancelled":
		return true
	}
	return false
}

// message is the provider's errors of a failed batch as one line.
func (b batchObject) message() string {
	if b.Errors == nil {
		return ""
	}
	var parts []string
	for _, e := range b.Errors.Data {
		s := e.Message
		if e.Code != "" {
			s = e.Code + ": " + s
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// errorCodes are the codes of the batch's validation errors.
func (b batchObject) errorCodes() []string {
	if b.Errors == nil {
		return nil
	}
	var codes []string
	for _, e := range b.Errors.Data {
		codes = append(codes, e.Code)
	}
	return codes
}

// apiCall makes one call to the Files or Batches API and decodes a 2xx
// JSON answer into out (when not nil).
func (c *Client) apiCall(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	resp, err := c.apiDo(ctx, method, path, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := c.readBody(resp.Body)
	if err != nil {
		return c.transportError(ctx, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.apiError(method, path, c.statusError(resp, raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return c.apiError(method, path, c.fail(jobs.ClassBadResponse, resp.StatusCode, "answer is not the JSON expected: "+err.Error(), raw))
		}
	}
	return nil
}

// apiDo sends one request to BASE+path with the key.
func (c *Client) apiDo(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, c.fail(jobs.ClassInvalidRequest, 0, err.Error(), nil)
	}
	if contentType != "" {
		hreq.Header.Set("Content-Type", contentType)
	}
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", "llmbatch")
	if c.key != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, c.apiError(method, path, c.transportError(ctx, err))
	}
	return resp, nil
}

// BatchAPIError is a failed call to the provider's Files or Batches API.
type BatchAPIError struct {
	Method, URL string
	Err         error
}

func (e *BatchAPIError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Method, e.URL, e.Err)
}

func (e *BatchAPIError) Unwrap() error { return e.Err }

// NotServed says whether the server answered that it has no such
// endpoint (404 or 405): it offers no Batch API.
func (e *BatchAPIError) NotServed() bool {
	var ce *CallError
	return errors.As(e.Err, &ce) && (ce.StatusCode == http.StatusNotFound || ce.StatusCode == http.StatusMethodNotAllowed)
}

func (c *Client) apiError(method, path string, err error) error {
	var ce *CallError
	if errors.As(err, &ce) && ce.Class.Disposition() == jobs.Fatal {
		return &FatalError{Failure: ce.Failure}
	}
	return &BatchAPIError{Method: method, URL: c.base + path, Err: err}
}

// uploadFile uploads the file at path as name, for batches.
func (c *Client) uploadFile(ctx context.Context, name, path string) (fileObject, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileObject{}, err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeUpload(mw, name, f))
	}()
	defer pr.Close()
	var out fileObject
	// No timeout: a file of 190 MB takes what the link needs.
	resp, err := c.apiDo(ctx, http.MethodPost, "/files", pr, mw.FormDataContentType())
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	raw, err := c.readBody(resp.Body)
	if err != nil {
		return out, c.apiError("POST", "/files", c.transportError(ctx, err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return out, c.apiError("POST", "/files", c.statusError(resp, raw))
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.ID == "" {
		return out, c.apiError("POST", "/files", c.fail(jobs.ClassBadResponse, resp.StatusCode, "answer has no file id", raw))
	}
	return out, nil
}

// writeUpload writes the multipart form of an upload: purpose=batch and
// the file.
func writeUpload(mw *multipart.Writer, name string, r io.Reader) error {
	if err := mw.WriteField("purpose", "batch"); err != nil {
		return err
	}
	part, err := mw.CreateFormFile("file", name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(part, r); err != nil {
		return err
	}
	return mw.Close()
}

// findFile looks for an uploaded batch file of that name.
func (c *Client) findFile(ctx context.Context, name string) (fileObject, bool, error) {
	var list struct {
		Data []fileObject `json:"data"`
	}
	if err := c.apiCall(ctx, http.MethodGet, "/files?purpose=batch", nil, "", &list); err != nil {
		return fileObject{}, false, err
	}
	for _, f := range list.Data {
		if f.Filename == name {
			return f, true, nil
		}
	}
	return fileObject{}, false, nil
}

// createBatch creates the batch of an uploaded file.
func (c *Client) createBatch(ctx context.Context, fileID string, ep jobs.Endpoint, key, window string) (batchObject, error) {
	body, _ := json.Marshal(map[string]any{
		"input_file_id":     fileID,
		"endpoint":          batchURL(ep),
		"completion_window": window,
		"metadata":          map[string]string{"llmbatch_key": key},
	})
	var out batchObject
	if err := c.apiCall(ctx, http.MethodPost, "/batches", bytes.NewReader(body), "application/json", &out); err != nil {
		return out, err
	}
	if out.ID == "" {
		return out, c.apiError("POST", "/batches", c.fail(jobs.ClassBadResponse, 200, "answer has no batch id", nil))
	}
	return out, nil
}

// findBatchPages bounds how far back findBatch looks: a batch it looks
// for was created by this job's last runs, among the newest.
const findBatchPages = 20

// findBatch looks among the provider's newest batches for the one made
// of fileID (or with key in its metadata).
func (c *Client) findBatch(ctx context.Context, key, fileID string) (batchObject, bool, error) {
	after := ""
	for range findBatchPages {
		path := "/batches?limit=100"
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		var list struct {
			Data    []batchObject `json:"data"`
			HasMore bool          `json:"has_more"`
			LastID  string        `json:"last_id"`
		}
		if err := c.apiCall(ctx, http.MethodGet, path, nil, "", &list); err != nil {
			return batchObject{}, false, err
		}
		for _, b := range list.Data {
			if b.Metadata["llmbatch_key"] == key || (fileID != "" && b.InputFileID == fileID) {
				return b, true, nil
			}
		}
		if !list.HasMore || len(list.Data) == 0 {
			break
		}
		after = list.LastID
		if after == "" {
			after = list.Data[len(list.Data)-1].ID
		}
	}
	return batchObject{}, false, nil
}

// getBatch reads the batch's status and counts.
func (c *Client) getBatch(ctx context.Context, id string) (batchObject, error) {
	var out batchObject
	err := c.apiCall(ctx, http.MethodGet, "/batches/"+url.PathEscape(id), nil, "", &out)
	return out, err
}

// cancelBatch asks the provider to cancel the batch.
func (c *Client) cancelBatch(ctx context.Context, id string) (batchObject, error) {
	var out batchObject
	err := c.apiCall(ctx, http.MethodPost, "/batches/"+url.PathEscape(id)+"/cancel", nil, "", &out)
	return out, err
}

// fileContent opens the content of a file (an output or error file) to be
// streamed; the caller closes it.
func (c *Client) fileContent(ctx context.Context, id string) (io.ReadCloser, error) {
	path := "/files/" + url.PathEscape(id) + "/content"
	resp, err := c.apiDo(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		raw, _ := c.readBody(resp.Body)
		return nil, c.apiError("GET", path, c.statusError(resp, raw))
	}
	return resp.Body, nil
}

// batchURL is the url of a batch line and the endpoint of a batch.
func batchURL(ep jobs.Endpoint) string { return "/v1" + string(ep) }
