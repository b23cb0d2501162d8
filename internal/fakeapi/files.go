package fakeapi

import (
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxUpload bounds an uploaded file; providers take batch files of up to
// 100-200 MB, and the fake holds them in memory.
const maxUpload = 256 << 20

// file is a stored file: an uploaded batch input (purpose "batch") or a
// batch's output or error file (purpose "batch_output"). Its data never
// changes once stored.
type file struct {
	id, filename, purpose string
	created               int64
	data                  []byte
}

// fileJSON is OpenAI's file object.
type fileJSON struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	Bytes     int    `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	Status    string `json:"status"`
}

func (f *file) object() fileJSON {
	return fileJSON{ID: f.id, Object: "file", Bytes: len(f.data), CreatedAt: f.created,
		Filename: f.filename, Purpose: f.purpose, Status: "processed"}
}

// listJSON is OpenAI's page of a list: newest first; first_id and last_id
// are null on an empty page.
type listJSON struct {
	Object  string  `json:"object"`
	Data    any     `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

func newList[T any](data []T, id func(T) string, hasMore bool) listJSON {
	l := listJSON{Object: "list", Data: data, HasMore: hasMore}
	if len(data) > 0 {
		first, last := id(data[0]), id(data[len(data)-1])
		l.FirstID, l.LastID = &first, &last
	}
	return l
}

// batchAPI holds the files and batches. Ids count up from 1 and are never
// reset, not even by Server.Reset, so that a client re-attaching to a batch
// finds it. Lock order: a batch's own lock may be held while mu is taken,
// never the reverse.
type batchAPI struct {
	mu               sync.Mutex
	files            map[string]*file
	fileIDs          []string // in the order stored
	batches          map[string]*batch
	batchIDs         []string // in the order created
	nFiles, nBatches int64
}

func (a *batchAPI) addFile(filename, purpose string, created time.Time, data []byte) *file {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nFiles++
	f := &file{id: "file-" + strconv.FormatInt(a.nFiles, 10), filename: filename, purpose: purpose,
		created: created.Unix(), data: data}
	if a.files == nil {
		a.files = map[string]*file{}
	}
	a.files[f.id] = f
	a.fileIDs = append(a.fileIDs, f.id)
	return f
}

func (a *batchAPI) file(id string) *file {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.files[id]
}

// listFiles returns the files of purpose (all when "") newest first.
func (a *batchAPI) listFiles(purpose string) []fileJSON {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []fileJSON{}
	for i := len(a.fileIDs) - 1; i >= 0; i-- {
		if f := a.files[a.fileIDs[i]]; purpose == "" || f.purpose == purpose {
			out = append(out, f.object())
		}
	}
	return out
}

// serveFiles answers the files endpoints: POST and GET on files, GET on
// files/{id} and files/{id}/content.
func (s *Server) serveFiles(w http.ResponseWriter, r *http.Request, cfg *Config, rt apiRoute) {
	if rt.id == "" {
		if r.Method == http.MethodPost {
			s.uploadFile(w, r, cfg)
			return
		}
		s.writeObject(w, newList(s.api.listFiles(r.URL.Query().Get("purpose")), func(f fileJSON) string { return f.ID }, false))
		return
	}
	f := s.api.file(rt.id)
	switch {
	case f == nil:
		s.writeError(w, noSuch("File", rt.id))
	case rt.action == "content":
		s.writeContent(w, cfg, f)
	default:
		s.writeObject(w, f.object())
	}
}

// uploadFile stores a multipart upload of a batch input file.
func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request, cfg *Config) {
	up, apiErr := readUpload(w, r)
	if apiErr != nil {
		s.writeError(w, apiErr)
		return
	}
	f := s.api.addFile(up.filename, "batch", cfg.batchNow(), up.data)
	s.stats.filesUploaded.Add(1)
	cfg.stall("upload", f.id)
	s.writeObject(w, f.object())
}

type upload struct {
	purpose, filename string
	data              []byte
	gotFile           bool
}

// readUpload reads the purpose and file fields of a multipart/form-data
// body; purpose must be "batch", the only one the fake keeps.
func readUpload(w http.ResponseWriter, r *http.Request) (upload, *apiError) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return upload{}, badRequest("", "The upload must be multipart/form-data with the fields purpose and file.")
	}
	var up upload
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err == nil {
			err = up.readPart(p)
		}
		if err != nil {
			return upload{}, uploadError(err)
		}
	}
	switch {
	case !up.gotFile:
		return upload{}, badRequest("file", "The upload has no file field.")
	case up.purpose != "batch":
		return upload{}, badRequest("purpose", `purpose must be "batch" (the fake keeps no other files).`)
	}
	return up, nil
}

var errTooLarge = errors.New("file too large")

func (up *upload) readPart(p *multipart.Part) error {
	defer p.Close()
	switch p.FormName() {
	case "purpose":
		b, err := io.ReadAll(io.LimitReader(p, 1<<10))
		up.purpose = string(b)
		return err
	case "file":
		data, err := io.ReadAll(io.LimitReader(p, maxUpload+1))
		if err == nil && len(data) > maxUpload {
			err = errTooLarge
		}
		up.data, up.gotFile = data, true
		up.filename = p.FileName()
		return err
	}
	return nil
}

func uploadError(err error) *apiError {
	var mbe *http.MaxBytesError
	if errors.Is(err, errTooLarge) || errors.As(err, &mbe) {
		return &apiError{status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
			Message: "The file is larger than " + strconv.Itoa(maxUpload>>20) + " MB."}
	}
	return badRequest("", "could not read the upload: "+err.Error())
}

// writeContent writes a file's bytes. Between the first half and the rest
// it calls Config.BatchStall("download", id), so a test can stop a client
// in the middle of a download.
func (s *Server) writeContent(w http.ResponseWriter, cfg *Config, f *file) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(f.data)))
	s.writeHead(w, http.StatusOK)
	half := len(f.data) / 2
	if _, err := w.Write(f.data[:half]); err != nil {
		return
	}
	_ = http.NewResponseController(w).Flush()
	cfg.stall("download", f.id)
	_, _ = w.Write(f.data[half:])
}

// noSuch is the 404 of an unknown file or batch id.
func noSuch(object, id string) *apiError {
	return &apiError{status: http.StatusNotFound, Type: "invalid_request_error", Message: "No such " + object + " object: " + id}
}
