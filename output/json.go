package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// The export formats build each line by appending to one reused []byte, so
// that a million records cost no per-record maps, reflection or allocations.

const hex = "0123456789abcdef"

// appendString appends s as a JSON string. It escapes exactly what
// encoding/json escapes with HTML escaping off: quotes, backslashes, control
// characters, U+2028 and U+2029; invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendStringBody(dst, s)
	return append(dst, '"')
}

// appendStringBody appends s escaped for use inside a JSON string, without
// the quotes.
func appendStringBody(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscapedByte(dst, b)
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

func appendEscapedByte(dst []byte, b byte) []byte {
	switch b {
	case '\\', '"':
		return append(dst, '\\', b)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	default:
		return append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
	}
}

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
	return appendString(dst, string(raw))
}
