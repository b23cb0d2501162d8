package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
)

// The export formats build each line by appending to one reused []byte, so
// that a million records cost no per-record maps, reflection or allocations.

var errEmptyJSON = errors.New("empty JSON value")

// rawAppender embeds raw JSON values, keeping a scratch buffer for the rare
// value that has to be compacted first.
type rawAppender struct {
	scratch bytes.Buffer
}

// appendRaw appends the JSON value raw as it is, unless it contains a line
// break: then it appends json.Compact of it, so the record stays one line.
// Bytes that are not UTF-8 (a provider may send them inside strings, and
// encoding/json accepts them) become U+FFFD, so every line is UTF-8 JSON.
// raw must be valid JSON; an empty raw is an error.
func (r *rawAppender) appendRaw(dst, raw []byte) ([]byte, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return dst, errEmptyJSON
	}
	if !utf8.Valid(raw) {
		raw = validUTF8(raw)
	}
	if bytes.IndexByte(raw, '\n') < 0 && bytes.IndexByte(raw, '\r') < 0 {
		return append(dst, raw...), nil
	}
	r.scratch.Reset()
	if err := json.Compact(&r.scratch, raw); err != nil {
		return dst, err
	}
	return append(dst, r.scratch.Bytes()...), nil
}

// validUTF8 replaces each byte of b that is not part of a UTF-8 sequence
// with U+FFFD, byte by byte as encoding/json decodes them, so that the
// exported body says what the recorded content says.
func validUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		c, size := utf8.DecodeRune(b)
		if c == utf8.RuneError && size == 1 {
			out = append(out, "\uFFFD"...)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}

// appendLenient appends raw as JSON when it is valid JSON, as a JSON string
// of its text when it is not, and as empty when it is empty. It is meant for
// bodies nobody promised would be JSON, such as a provider's error body.
func (r *rawAppender) appendLenient(dst, raw []byte, empty string) []byte {
	if len(bytes.TrimSpace(raw)) == 0 {
		return append(dst, empty...)
	}
	if json.Valid(raw) {
		if out, err := r.appendRaw(dst, raw); err == nil {
			return out
		}
	}
	return jsonscan.AppendString(dst, string(raw))
}
