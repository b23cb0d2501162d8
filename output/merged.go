package output

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/llmbatch/llmbatch/jobs"
)

// MergedFields names the members FormatMerged adds to each record. An empty
// name leaves that member out.
type MergedFields struct {
	// Answer is the answer's text (the first choice's content), or null
	// for a request without a result.
	Answer string
	// Reasoning is the reasoning text ("" when the model gave none), or
	// null without a result.
	Reasoning string
	// Usage is the token usage as the flat format writes it, or null when
	// unknown or without a result.
	Usage string
	// Status is the request's status: succeeded, failed or cancelled.
	Status string
}

// DefaultMergedFields are the names the merged format uses unless told
// otherwise.
var DefaultMergedFields = MergedFields{Answer: "answer", Reasoning: "reasoning", Usage: "usage", Status: "status"}

// Validate refuses two members of the same name.
func (f MergedFields) Validate() error {
	seen := map[string]bool{}
	for _, n := range []string{f.Answer, f.Reasoning, f.Usage, f.Status} {
		if n == "" {
			continue
		}
		if seen[n] {
			return fmt.Errorf("field name %q is used twice (see --answer-field, --reasoning-field, --usage-field, --status-field)", n)
		}
		seen[n] = true
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
		if name, flag := f.collides(m.Key); name != "" {
			return b, fmt.Errorf("the record already has a field %q; give the %s another name with %s", m.Key, name, flag)
		}
	}
	// Drop the closing brace (and any white space before it) and append
	// the new members in its place.
	end := bytes.LastIndexByte(obj, '}')
	b = b[:start+end]
	sep := len(ms) > 0
	member := func(name string) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = appendString(b, name)
		b = append(b, ':')
	}
	ok := rec.Request.Status == jobs.StatusSucceeded
	if f.Answer != "" {
		member(f.Answer)
		b = appendStringOrNull(b, ok, func() string { return rec.Result.Content })
	}
	if f.Reasoning != "" {
		member(f.Reasoning)
		b = appendStringOrNull(b, ok, func() string { return rec.Result.ReasoningContent })
	}
	if f.Usage != "" {
		member(f.Usage)
		if ok {
			b = appendUsage(b, rec.Result.Usage)
		} else {
			b = append(b, "null"...)
		}
	}
	if f.Status != "" {
		member(f.Status)
		b = appendString(b, string(rec.Request.Status))
	}
	return append(b, '}'), nil
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
	b = appendString(b, rec.Request.CustomID)
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
func (f MergedFields) collides(key string) (name, flag string) {
	switch key {
	case "":
		return "", ""
	case f.Answer:
		return "answer", "--answer-field"
	case f.Reasoning:
		return "reasoning", "--reasoning-field"
	case f.Usage:
		return "usage", "--usage-field"
	case f.Status:
		return "status", "--status-field"
	}
	return "", ""
}

func appendStringOrNull(b []byte, ok bool, s func() string) []byte {
	if !ok {
		return append(b, "null"...)
	}
	return appendString(b, s())
}
