package output

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
	"github.com/llmbatch/llmbatch/jobs"
)

// MergedFields names the members FormatMerged adds to each record. An empty
// name leaves that member out.
type MergedFields struct {
	// Answer is the answer's text (the first choice's content), or null
	// for a request without a result or an embeddings request.
	Answer string
	// Reasoning is the reasoning text ("" when the model gave none), or
	// null without a result or for an embeddings request.
	Reasoning string
	// Usage is the token usage as the flat format writes it, or null when
	// unknown or without a result.
	Usage string
	// Status is the request's status: succeeded, failed or cancelled.
	Status string
	// Embedding is an embeddings answer's vector as a JSON array, or null
	// without a result; only embeddings requests have it.
	Embedding string
	// Request is the request's body as sent and Prompt the text of its
	// prompt (see ExportOptions.WithRequest); only with --with-request.
	Request, Prompt string
}

// DefaultMergedFields are the names the merged format uses unless told
// otherwise.
var DefaultMergedFields = MergedFields{Answer: "answer", Reasoning: "reasoning", Usage: "usage", Status: "status",
	Embedding: "embedding", Request: "request", Prompt: "prompt"}

// mergedMember is a member the merged format may add: its name and the
// flag that renames it.
type mergedMember struct{ name, what, flag string }

// members lists the members f names, in the order they are added.
func (f MergedFields) members() []mergedMember {
	return []mergedMember{
		{f.Answer, "answer", "--answer-field"}, {f.Reasoning, "reasoning", "--reasoning-field"},
		{f.Embedding, "embedding", "--embedding-field"}, {f.Usage, "usage", "--usage-field"},
		{f.Status, "status", "--status-field"}, {f.Request, "request", "--request-field"},
		{f.Prompt, "prompt", "--prompt-field"},
	}
}

// Validate refuses two members of the same name.
func (f MergedFields) Validate() error {
	seen := map[string]bool{}
	for _, m := range f.members() {
		if m.name == "" {
			continue
		}
		if seen[m.name] {
			return fmt.Errorf("field name %q is used twice (see --answer-field, --reasoning-field, --embedding-field, "+
				"--usage-field, --status-field, --request-field, --prompt-field)", m.name)
		}
		seen[m.name] = true
	}
	return nil
}

// SetMergedFields sets the names FormatMerged uses; without a call it uses
// DefaultMergedFields.
func (e *Exporter) SetMergedFields(f MergedFields) { e.merged = &f }

var errNoObject = errors.New("not a JSON object")

// appendMerged appends the request's record (its metadata: the dataset
// record it was made from) with the answer's members added at its end,
// without the line break. The record's own bytes are kept as they are; only
// a record that spans lines is compacted. A request whose metadata is not
// an object (a JSONL request line) gets the record
// {"custom_id": ..., "metadata": ...} (metadata left out when there is none).
func (e *Exporter) appendMerged(b []byte, rec jobs.Record) ([]byte, error) {
	f := DefaultMergedFields
	if e.merged != nil {
		f = *e.merged
	}
	if rec.Request.Endpoint != jobs.EndpointEmbeddings {
		f.Embedding = ""
	}
	if !e.opts.WithRequest {
		f.Request, f.Prompt = "", ""
	}
	start := len(b)
	b, err := e.appendRecord(b, rec)
	if err != nil {
		return b, err
	}
	obj := b[start:]
	ms, err := jobs.Members(obj)
	if err != nil {
		return b, fmt.Errorf("metadata: %w", err)
	}
	for _, m := range ms {
		if what, flag := f.collides(m.Key); what != "" {
			return b, fmt.Errorf("the record already has a field %q; give the %s another name with %s", m.Key, what, flag)
		}
	}
	// Drop the closing brace (and any white space before it) and append
	// the new members in its place.
	end := bytes.LastIndexByte(obj, '}')
	b = b[:start+end]
	sep := len(ms) > 0
	for _, m := range f.members() {
		if m.name == "" {
			continue
		}
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = jsonscan.AppendString(b, m.name)
		b = append(b, ':')
		if b, err = e.appendMergedValue(b, m.what, rec); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendMergedValue appends the value of the member what (as
// MergedFields.members names it) for rec.
func (e *Exporter) appendMergedValue(b []byte, what string, rec jobs.Record) ([]byte, error) {
	ok := rec.Request.Status == jobs.StatusSucceeded
	switch what {
	case "status":
		return jsonscan.AppendString(b, string(rec.Request.Status)), nil
	case "request":
		return e.appendRequest(b, rec.Request), nil
	case "prompt":
		return appendPrompt(b, rec.Request), nil
	}
	text := what == "answer" || what == "reasoning"
	if !ok || text && rec.Request.Endpoint == jobs.EndpointEmbeddings { // a vector has no text
		return append(b, "null"...), nil
	}
	switch what {
	case "answer":
		return jsonscan.AppendString(b, rec.Result.Content), nil
	case "reasoning":
		return jsonscan.AppendString(b, rec.Result.ReasoningContent), nil
	case "embedding":
		return e.appendEmbedding(b, rec.Result.Raw)
	default: // usage
		return appendUsage(b, rec.Result.Usage), nil
	}
}

// appendRecord appends the record the answer is merged into.
func (e *Exporter) appendRecord(b []byte, rec jobs.Record) ([]byte, error) {
	meta := bytes.TrimSpace(rec.Request.Metadata)
	if len(meta) > 0 && meta[0] == '{' {
		b, err := e.raw.appendRaw(b, meta)
		if err != nil {
			return b, fmt.Errorf("metadata: %w", err)
		}
		return b, nil
	}
	b = append(b, `{"custom_id":`...)
	b = jsonscan.AppendString(b, rec.Request.CustomID)
	if len(meta) > 0 {
		b = append(b, `,"metadata":`...)
		var err error
		if b, err = e.raw.appendRaw(b, meta); err != nil {
			return b, fmt.Errorf("metadata: %w", err)
		}
	}
	return append(b, '}'), nil
}

// collides names the member (and its flag) that key would duplicate.
func (f MergedFields) collides(key string) (what, flag string) {
	for _, m := range f.members() {
		if m.name != "" && m.name == key {
			return m.what, m.flag
		}
	}
	return "", ""
}
