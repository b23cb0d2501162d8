package input

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/jobs"
)

// Options are the import options that shape request bodies.
type Options struct {
	// DefaultModel (from --model) is spliced into bodies that have no
	// "model" of their own.
	DefaultModel string
	// SkipInvalid (--skip-invalid) hands out each invalid line as a request
	// with Invalid set, instead of refusing the file. A problem with the
	// file as a whole (empty, binary, UTF-16, no valid line at all) still
	// refuses it. It does not change the fingerprint: the flag decides
	// how a file becomes a job, not which job it is.
	SkipInvalid bool
	// Name names the input in messages (NAME:LINE: reason) when it is not
	// the path: "-" for standard input copied to a file.
	Name string
}

// maxInvalidBody is how much of an invalid line is kept as the body of
// its failed request: enough to see what went wrong, not a copy of a
// runaway line.
const maxInvalidBody = 64 << 10

// Reader yields the valid requests of one input file in line order. It
// implements jobs.RequestSource.
type Reader struct {
	path string
	opts Options
	f    *os.File
	hash hash.Hash // sees every byte br reads, for the fingerprint
	br   *bufio.Reader
	acc  []byte // holds a line longer than br's buffer
	line int    // physical line number of the last line read
	seen bool   // a non-blank line was read
	done bool
	// file says why the file as a whole is not a file of requests (empty,
	// binary, not UTF-8): Err reports that one line, with or without
	// SkipInvalid.
	file *jobs.LineError
	// noneValid: with SkipInvalid, not one line was valid.
	noneValid bool
	valid     int // valid lines handed out
	fp        string
	errs      jobs.ValidationError
	sc        scratch
}

var _ jobs.RequestSource = (*Reader)(nil)

// bufSize is the read buffer; longer lines are accumulated in Reader.acc.
const bufSize = 64 << 10

var bom = []byte("\xEF\xBB\xBF")

// Open opens the input file at path. The error names path: "PATH: is a
// directory, not a JSONL file" or "PATH: <reason>", matching the os errors
// with errors.Is (fs.ErrNotExist, fs.ErrPermission).
func Open(path string, opts Options) (*Reader, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	return &Reader{
		path: cmp.Or(opts.Name, path),
		opts: opts,
		f:    f,
		hash: h,
		br:   bufio.NewReaderSize(io.TeeReader(f, h), bufSize),
	}, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		// The *fs.PathError would read "open PATH: ..."; the operation is
		// noise to a user who named a file.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %w", path, pe.Err)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a directory, not a JSONL file", path)
	}
	return f, nil
}

// Next returns the next valid request, or io.EOF at the end of the file.
// It reads the whole file whatever it finds, so that every problem is
// reported at once: it hands out each valid line, also after an invalid one,
// so that the store can find the custom_ids used twice among them (Err then
// refuses the file, and the store rolls its import back). With SkipInvalid
// it hands out each invalid line too, as a request with Invalid set. Any
// other error is a failure to read the file.
func (r *Reader) Next() (jobs.Request, error) {
	for !r.done {
		raw, err := r.readLine()
		if err == io.EOF {
			r.finish()
			break
		}
		if err != nil {
			return jobs.Request{}, fmt.Errorf("read %s: %w", r.path, err)
		}
		req, ok, err := r.handle(raw)
		if err != nil || ok {
			return req, err
		}
	}
	return jobs.Request{}, io.EOF
}

// handle checks one physical line; ok says that req is a request to hand out.
func (r *Reader) handle(raw []byte) (req jobs.Request, ok bool, err error) {
	r.line++
	if r.line == 1 {
		if reason := utf16Reason(raw); reason != "" {
			return req, false, r.stop(reason)
		}
		raw = bytes.TrimPrefix(raw, bom)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return req, false, nil
	}
	r.seen = true
	if bytes.IndexByte(raw, 0) >= 0 {
		// A NUL never occurs in JSON text: this is not a JSONL file, and
		// one error says so better than one per line.
		return req, false, r.stop("binary data (NUL byte), not a JSONL file")
	}
	if !utf8.Valid(raw) {
		// An encoding is the whole file's: a file saved as Latin-1 has
		// such bytes on many lines, and converting it is the one fix.
		return req, false, r.stop(fmt.Sprintf("not valid UTF-8 (column %d): the file is not UTF-8 text; convert it to UTF-8 (for example with iconv)", badUTF8(raw)+1))
	}
	p, reason := parseLineIn(&r.sc, raw, r.line, r.opts)
	if reason == "" {
		req, reason = p.request(r.line, &r.sc.arena)
	}
	if reason != "" {
		r.fail(r.line, reason)
		if r.opts.SkipInvalid {
			return r.invalid(p, raw, reason), true, nil
		}
		return req, false, nil
	}
	r.valid++
	return req, true, nil
}

// invalid is the request an invalid line becomes with SkipInvalid: failed,
// never sent, with what could be read of it. Its custom_id is the line's
// own when that was read, else line-N (the store picks another if that one
// is taken); its body is the line's first maxInvalidBody bytes.
func (r *Reader) invalid(p parsed, raw []byte, reason string) jobs.Request {
	id := p.customID
	if id == "" {
		id = "line-" + strconv.Itoa(r.line)
	}
	ep := p.endpoint
	if ep == "" {
		ep = jobs.EndpointChat // the column needs one; it is never used
	}
	var meta []byte
	if p.metadata != nil {
		meta = r.sc.arena.copy(p.metadata)
	}
	return jobs.Request{
		Line:     r.line,
		CustomID: id,
		Endpoint: ep,
		Model:    p.model,
		Body:     r.sc.arena.copy(raw[:min(len(raw), maxInvalidBody)]),
		Metadata: meta,
		Status:   jobs.StatusFailed,
		Invalid:  jobs.LineError{File: r.path, Line: r.line, Reason: reason}.Error(),
	}
}

// utf16Reason recognises a UTF-16 byte order mark, a common result of
// saving a file with some Windows editors.
func utf16Reason(raw []byte) string {
	if bytes.HasPrefix(raw, []byte{0xFF, 0xFE}) || bytes.HasPrefix(raw, []byte{0xFE, 0xFF}) {
		return "UTF-16 text, not UTF-8 (save the file as UTF-8)"
	}
	return ""
}

// stop reports reason for the current line and ends reading. The rest of
// the file still goes through the hash so that the fingerprint stays equal
// to Fingerprint's.
func (r *Reader) stop(reason string) error {
	r.seen = true
	r.file = &jobs.LineError{File: r.path, Line: r.line, Reason: reason}
	r.fail(r.line, reason)
	_, err := io.Copy(io.Discard, r.br)
	r.finish()
	if err != nil {
		return fmt.Errorf("read %s: %w", r.path, err)
	}
	return nil
}

func (r *Reader) fail(line int, reason string) {
	r.errs.Add(jobs.LineError{File: r.path, Line: line, Reason: reason})
}

func (r *Reader) finish() {
	r.done = true
	if !r.seen {
		r.file = &jobs.LineError{File: r.path, Reason: "no requests (the file is empty)"}
		r.fail(0, r.file.Reason)
	} else if r.opts.SkipInvalid && r.valid == 0 && r.file == nil {
		// Most likely not a file of requests at all (CSV, a log): a job
		// of nothing but failures would help no one.
		r.noneValid = true
		r.fail(0, "no valid line; --skip-invalid imports a file only when some of its lines are valid")
	}
	r.fp = sum(r.hash, r.opts)
}

// readLine returns the next physical line without its line ending, or
// io.EOF. The slice is only valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	r.acc = r.acc[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			r.acc = append(r.acc, chunk...)
			continue
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if len(r.acc) > 0 {
			r.acc = append(r.acc, chunk...)
			chunk = r.acc
		}
		if err == io.EOF && len(chunk) == 0 {
			return nil, io.EOF
		}
		return trimEOL(chunk), nil
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// Reject records line as invalid for reason, as the store does for a second
// use of a custom_id. It changes nothing of what Next hands out; Err then
// refuses the file.
//
// The store may reject lines only once it has read the file to the end,
// after the lines found invalid on the way: of more than jobs.MaxReported
// errors, the ones kept are those of the first lines, as they would be had
// the rejection come in line order.
func (r *Reader) Reject(line int, reason string) {
	addInLineOrder(&r.errs, jobs.LineError{File: r.path, Line: line, Reason: reason})
}

// addInLineOrder adds e to v, which keeps the errors of the first
// jobs.MaxReported lines whatever order they come in: when v is full, e
// takes the place of the last line listed if it comes before it.
func addInLineOrder(v *jobs.ValidationError, e jobs.LineError) {
	if len(v.Errors) < jobs.MaxReported {
		v.Add(e)
		return
	}
	v.Total++
	last := 0
	for i := range v.Errors {
		if v.Errors[i].Line > v.Errors[last].Line {
			last = i
		}
	}
	if e.Line < v.Errors[last].Line {
		v.Errors[last] = e
	}
}

// Err returns, after Next returned io.EOF, a *jobs.ValidationError listing
// the invalid lines in line order, or nil if every line was valid. With
// SkipInvalid it returns nil unless the file as a whole is invalid. When
// the file is not a file of requests at all (empty, binary, UTF-16, not
// UTF-8) the error is a *FileError: that one line, whatever other lines
// were found invalid before it.
func (r *Reader) Err() error {
	if r.file != nil {
		return &FileError{jobs.ValidationError{Errors: []jobs.LineError{*r.file}, Total: 1}}
	}
	if r.errs.Total == 0 || r.opts.SkipInvalid && !r.noneValid {
		return nil
	}
	sort.SliceStable(r.errs.Errors, func(i, j int) bool {
		return r.errs.Errors[i].Line < r.errs.Errors[j].Line
	})
	return &r.errs
}

// Fingerprint identifies the file's content and the options that change
// request bodies; it equals the package function Fingerprint for the same
// file and options. It is only valid after Next returned io.EOF, and empty
// before.
func (r *Reader) Fingerprint() string { return r.fp }

// Close closes the file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// FileError is the error of a file that is not a file of requests at all
// (empty, binary, UTF-16, not UTF-8): one line says why, and
// --skip-invalid cannot help. It unwraps to its *jobs.ValidationError.
type FileError struct {
	jobs.ValidationError
}

// Unwrap returns the validation error of the one line.
func (e *FileError) Unwrap() error { return &e.ValidationError }

// KeepsInvalid says whether invalid lines are handed out (SkipInvalid);
// the store then keeps a duplicate custom_id as a failed request too.
func (r *Reader) KeepsInvalid() bool { return r.opts.SkipInvalid }
