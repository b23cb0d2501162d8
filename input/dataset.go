package input

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"strconv"

	"github.com/llmbatch/llmbatch/jobs"
)

// DatasetOptions say how a dataset's records become requests.
type DatasetOptions struct {
	// Format is the file's format; empty means FormatOf the path.
	Format RecordFormat
	// Template renders each record. Without one, only a text file can be
	// read: each line is then the prompt.
	Template *Template
	// System is the system message put before the rendered messages.
	System string
	// Model is the model of every request whose rendered object names none.
	Model string
	// Params are body fields, in flag order.
	Params []Param
	// Endpoint is where rendered text goes: chat (the default) makes it
	// the user message, completions the prompt, embeddings the input.
	Endpoint jobs.Endpoint
	// IDField names the record field whose value is the custom_id; without
	// it the custom_id is line-N (JSONL, text) or row-N (CSV, N counting
	// data rows from 1).
	IDField string
	// SkipInvalid hands out each invalid record as a request with Invalid
	// set, as Options.SkipInvalid does for a file of requests.
	SkipInvalid bool
	// Name names the input in messages when it is not the path, as
	// Options.Name does.
	Name string
}

// Validate checks the options that do not depend on the file.
func (o DatasetOptions) Validate(path string) error {
	f := o.format(path)
	switch {
	case o.Template == nil && f != FormatText:
		return fmt.Errorf("%s: a %s dataset needs --template to turn its records into prompts", path, f)
	case o.Endpoint != "" && !o.Endpoint.Valid():
		return fmt.Errorf("unknown endpoint %q", o.Endpoint)
	case o.System != "" && o.Endpoint == jobs.EndpointCompletions:
		return fmt.Errorf("--system needs --endpoint chat; a completions prompt has no system message")
	case o.System != "" && o.Endpoint == jobs.EndpointEmbeddings:
		return fmt.Errorf("--system needs --endpoint chat; an embeddings input has no system message")
	}
	seen := map[string]bool{}
	for _, p := range o.Params {
		if seen[p.Key] {
			return fmt.Errorf("--param %s is given twice", p.Key)
		}
		seen[p.Key] = true
		if err := o.checkEmbeddingParam(p); err != nil {
			return err
		}
	}
	return nil
}

// checkEmbeddingParam checks a --param of an embeddings dataset once, as
// ParseParam checks the documented parameters of every endpoint: "input"
// is the template's, and an embeddings body has fields of its own.
func (o DatasetOptions) checkEmbeddingParam(p Param) error {
	if o.Endpoint != jobs.EndpointEmbeddings {
		return nil
	}
	if p.Key == "input" {
		return fmt.Errorf(`--param input: "input" cannot be set with --param (the template renders it)`)
	}
	if check, ok := embeddingParams[p.Key]; ok {
		if reason := check(p.Key, p.Value); reason != "" {
			return fmt.Errorf("--param %s=%s: %s", p.Key, p.Value, reason)
		}
	}
	return nil
}

func (o DatasetOptions) endpoint() jobs.Endpoint {
	if o.Endpoint == "" {
		return jobs.EndpointChat
	}
	return o.Endpoint
}

func (o DatasetOptions) format(path string) RecordFormat {
	if o.Format != "" {
		return o.Format
	}
	return FormatOf(path)
}

// Dataset yields one request per record of a JSONL, CSV or text dataset,
// in file order. It implements jobs.RequestSource and jobs.Fingerprinter.
//
// The template's output decides the request's shape: a JSON array is the
// whole messages array (chat) or the whole input (embeddings); a JSON
// object with "messages" or "prompt" (or, for embeddings, "input") gives
// those fields (and may set "model" and parameters); anything else is the
// user message (chat), the prompt (completions) or the input (embeddings),
// a string. Surrounding white
// space is removed. The record itself is the request's metadata, so that
// the merged export can give it back with the answer added.
type Dataset struct {
	path   string
	format RecordFormat
	opts   DatasetOptions
	f      *os.File
	src    io.Reader // the file through the hash
	hash   hash.Hash
	recs   recordReader
	buf    bytes.Buffer // the rendered template
	seen   bool         // a record, valid or not, was read
	done   bool
	fatal  bool // the file as a whole is invalid (see Reader.fatal)
	valid  int  // valid records handed out
	fp     string
	errs   jobs.ValidationError
}

var (
	_ jobs.RequestSource = (*Dataset)(nil)
	_ jobs.Fingerprinter = (*Dataset)(nil)
)

// OpenDataset opens the dataset at path. Errors name the path, as Open's do.
func OpenDataset(path string, opts DatasetOptions) (*Dataset, error) {
	if err := opts.Validate(cmp.Or(opts.Name, path)); err != nil {
		return nil, err
	}
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	src := io.TeeReader(f, h)
	format := opts.format(path)
	return &Dataset{
		path:   cmp.Or(opts.Name, path),
		format: format,
		opts:   opts,
		f:      f,
		src:    src,
		hash:   h,
		recs:   newRecordReader(format, bufio.NewReaderSize(src, bufSize)),
	}, nil
}

// Next returns the request of the next valid record, or io.EOF. Like
// Reader.Next it reads the whole file to report every invalid record, and
// hands out every valid one, also after an invalid one, so that the store
// finds the custom_ids used twice among them.
func (d *Dataset) Next() (jobs.Request, error) {
	for !d.done {
		rec, reason, err := d.recs.next()
		if err == io.EOF {
			return jobs.Request{}, d.finish()
		}
		if err != nil {
			return jobs.Request{}, fmt.Errorf("read %s: %w", d.path, err)
		}
		d.seen = true
		var req jobs.Request
		if reason == "" {
			req, reason = d.request(rec)
		}
		if reason != "" {
			d.fail(rec.line, reason)
			if d.recs.stopped() {
				d.fatal = true // binary data, UTF-16, a bad CSV header
			} else if d.opts.SkipInvalid {
				return d.invalid(rec, reason), nil
			}
			continue
		}
		if !d.fatal {
			d.valid++
			return req, nil
		}
	}
	return jobs.Request{}, io.EOF
}

// invalid is the failed request an invalid record becomes with
// SkipInvalid. Its body and metadata are the record as far as it could be
// read (empty when it could not be).
func (d *Dataset) invalid(rec record, reason string) jobs.Request {
	id, bad := d.customID(rec)
	if bad != "" {
		id = d.defaultID(rec)
	}
	return jobs.Request{Line: rec.line, CustomID: id, Endpoint: d.opts.endpoint(), Model: d.opts.Model,
		Body: append([]byte{}, rec.raw...), Metadata: rec.raw, Status: jobs.StatusFailed,
		Invalid: jobs.LineError{File: d.path, Line: rec.line, Reason: reason}.Error()}
}

// finish hashes what the readers left unread (after binary data) and ends.
func (d *Dataset) finish() error {
	d.done = true
	if !d.seen {
		d.fatal = true
		d.fail(0, d.recs.emptyReason())
	} else if d.opts.SkipInvalid && d.valid == 0 && !d.fatal {
		d.fatal = true
		d.fail(0, "no valid record; --skip-invalid imports a file only when some of its records are valid")
	}
	if _, err := io.Copy(io.Discard, d.src); err != nil {
		return fmt.Errorf("read %s: %w", d.path, err)
	}
	d.fp = d.opts.sum(d.hash, d.format)
	return io.EOF
}

func (d *Dataset) fail(line int, reason string) {
	d.errs.Add(jobs.LineError{File: d.path, Line: line, Reason: reason})
}

// request renders rec and builds its request, or says why it cannot.
func (d *Dataset) request(rec record) (jobs.Request, string) {
	id, reason := d.customID(rec)
	if reason != "" {
		return jobs.Request{}, reason
	}
	text := rec.text
	if d.opts.Template != nil {
		if reason := d.opts.Template.execute(&d.buf, rec.data); reason != "" {
			return jobs.Request{}, reason
		}
		text = d.buf.String()
	}
	ep, model, body, reason := d.bodyOf(text)
	if reason != "" {
		return jobs.Request{}, reason
	}
	// The body goes through the checks of a request line, so that a
	// dataset cannot send what a JSONL file could not.
	if _, reason := parseLine(body, rec.line, Options{}); reason != "" {
		return jobs.Request{}, "the rendered request is invalid: " + reason
	}
	return jobs.Request{Line: rec.line, CustomID: id, Endpoint: ep, Model: model, Body: body,
		Metadata: rec.raw, Status: jobs.StatusPending}, ""
}

// customID is the --id-field value of rec, or line-N / row-N.
func (d *Dataset) customID(rec record) (string, string) {
	if d.opts.IDField == "" {
		return d.defaultID(rec), ""
	}
	field := d.opts.IDField
	var id string
	switch v := rec.data[field].(type) {
	case nil:
		if _, ok := rec.data[field]; !ok {
			return "", fmt.Sprintf("no field %s for the custom_id (--id-field)", shorten(quote(field)))
		}
		return "", fmt.Sprintf("field %s (--id-field) must be a string or a number, got null", shorten(quote(field)))
	case string:
		id = v
	case json.Number:
		id = v.String()
	default:
		return "", fmt.Sprintf("field %s (--id-field) must be a string or a number, got %s", shorten(quote(field)), typeName(v))
	}
	if id == "" {
		return "", fmt.Sprintf("field %s (--id-field) is empty", shorten(quote(field)))
	}
	if len(id) > maxCustomID {
		return "", fmt.Sprintf("field %s (--id-field) is %d bytes long, the custom_id limit is %d", shorten(quote(field)), len(id), maxCustomID)
	}
	return id, ""
}

// defaultID is the custom_id of a record without --id-field.
func (d *Dataset) defaultID(rec record) string {
	if d.format == FormatCSV {
		return "row-" + strconv.Itoa(rec.n)
	}
	return "line-" + strconv.Itoa(rec.line)
}

func typeName(v any) string {
	switch v.(type) {
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	default:
		return "an object"
	}
}

// Reject records line as invalid for reason (a second use of a custom_id),
// keeping the errors of the first lines as Reader.Reject does.
func (d *Dataset) Reject(line int, reason string) {
	addInLineOrder(&d.errs, jobs.LineError{File: d.path, Line: line, Reason: reason})
}

// Err returns, after io.EOF, a *jobs.ValidationError listing the invalid
// records in line order, or nil.
func (d *Dataset) Err() error {
	if d.errs.Total == 0 || d.opts.SkipInvalid && !d.fatal {
		return nil
	}
	sort.SliceStable(d.errs.Errors, func(i, j int) bool { return d.errs.Errors[i].Line < d.errs.Errors[j].Line })
	return &d.errs
}

// Fingerprint identifies the file's bytes together with the template text
// and every option that shapes bodies; it equals DatasetFingerprint's. It is
// empty until Next has returned io.EOF.
func (d *Dataset) Fingerprint() string { return d.fp }

// Close closes the file.
func (d *Dataset) Close() error {
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// DatasetFingerprint returns the fingerprint a Dataset over path with opts
// gives, hashing the file without parsing it.
func DatasetFingerprint(path string, opts DatasetOptions) (string, error) {
	h, err := hashFile(path)
	if err != nil {
		return "", err
	}
	return opts.sum(h, opts.format(path)), nil
}

// sum finishes a hash of the file's bytes with everything that shapes the
// requests. Each option is written with its length, so that no two
// different sets of options write the same bytes.
func (o DatasetOptions) sum(h hash.Hash, f RecordFormat) string {
	field := func(k, v string) { fmt.Fprintf(h, "\x00%s=%d:%s", k, len(v), v) }
	io.WriteString(h, "\x00dataset")
	field("format", string(f))
	if o.Template != nil {
		field("template", o.Template.Text())
	}
	field("system", o.System)
	field("model", o.Model)
	field("endpoint", string(o.endpoint()))
	field("id-field", o.IDField)
	for _, p := range o.Params {
		field("param", p.Key+"="+string(p.Value))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// KeepsInvalid says whether invalid records are handed out (SkipInvalid).
func (d *Dataset) KeepsInvalid() bool { return d.opts.SkipInvalid }
