package jobs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
)

// CacheKey identifies what a request asks for, so that a database can
// answer a request from the result of an earlier identical one (in any job)
// instead of calling the API again. Two bodies that the API reads the same
// way get the same key even when they are spelled differently: the body is
// decoded and written out again with its object keys sorted, no white space
// and every number in one spelling (1.0, 1e0 and 1 are the same number).
// "stream" and "stream_options" are left out, because a streamed answer is
// stored exactly as the plain one. The endpoint and the sample index are
// part of the key, so that the K samples of one prompt stay independent
// answers.
//
// The key is the hex SHA-256 of "endpoint\x00sample\x00canonical body". body
// must be a JSON object; anything else is an error.
func CacheKey(endpoint Endpoint, body []byte, sample int) (string, error) {
	canon, err := CanonicalBody(body)
	if err != nil {
		return "", err
	}
	return CanonicalKey(endpoint, canon, sample), nil
}

// CanonicalKey is CacheKey for a body already in its canonical spelling,
// for the K samples of one body.
func CanonicalKey(endpoint Endpoint, canon []byte, sample int) string {
	var head [64]byte
	h := sha256.New()
	b := append(append(head[:0], endpoint...), 0)
	b = append(strconv.AppendInt(b, int64(sample), 10), 0)
	h.Write(b)
	h.Write(canon)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// CanonicalBody returns the body's canonical spelling, as CacheKey hashes
// it. It works on the raw bytes, without decoding into maps: strings keep
// their bytes unless they hold escapes, which are decoded and written again
// with only the escapes JSON requires.
func CanonicalBody(body []byte) ([]byte, error) {
	if !json.Valid(body) {
		return nil, errors.New("canonical body: not valid JSON")
	}
	var c Canonicalizer
	canon, err := c.ValidBody(body)
	return bytes.Clone(canon), err
}

// Canonicalizer is CanonicalBody for a caller that canonicalizes many
// bodies it has already validated (an input reader): it skips the
// validation and reuses its buffers. Not safe for concurrent use.
type Canonicalizer struct {
	buf []byte
	// members holds one member list per nesting depth.
	members [][]Member
}

// ValidBody returns the canonical spelling of body, which must be valid
// JSON (else the result is unspecified, or an error). The result is valid
// until the next call.
func (c *Canonicalizer) ValidBody(body []byte) ([]byte, error) {
	ms, err := c.split(0, body)
	if err != nil {
		return nil, fmt.Errorf("canonical body: %w", err)
	}
	ms = slices.DeleteFunc(ms, func(m Member) bool { return m.Key == "stream" || m.Key == "stream_options" })
	c.buf, err = c.appendObject(c.buf[:0], body, ms, 0)
	return c.buf, err
}

// split lists the members of object v at nesting depth d, into the list
// kept for that depth.
func (c *Canonicalizer) split(d int, v []byte) ([]Member, error) {
	for len(c.members) <= d {
		c.members = append(c.members, nil)
	}
	ms, err := AppendMembers(c.members[d][:0], v)
	if err == nil {
		c.members[d] = ms
	}
	return ms, err
}

func (c *Canonicalizer) appendObject(b, raw []byte, ms []Member, d int) ([]byte, error) {
	slices.SortStableFunc(ms, func(x, y Member) int { return strings.Compare(x.Key, y.Key) })
	b = append(b, '{')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMinimalString(b, m.Key)
		b = append(b, ':')
		var err error
		if b, err = c.appendCanonical(b, raw[m.ValueStart:m.End], d+1); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendCanonical appends the valid JSON value v, at nesting depth d, in
// canonical spelling.
func (c *Canonicalizer) appendCanonical(b, v []byte, d int) ([]byte, error) {
	switch v[0] {
	case '{':
		ms, err := c.split(d, v)
		if err != nil {
			return nil, err
		}
		return c.appendObject(b, v, ms, d)
	case '[':
		b = append(b, '[')
		for n, item := range jsonscan.Items(v) {
			if n > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = c.appendCanonical(b, item, d+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case '"':
		if bytes.IndexByte(v[1:len(v)-1], '\\') < 0 {
			// Valid JSON text without escapes holds no character that
			// needs one: it is already in canonical spelling.
			return append(b, v...), nil
		}
		s, ok := jsonscan.Unquote(v)
		if !ok {
			return nil, errNotString
		}
		return appendMinimalString(b, s), nil
	case 't', 'f', 'n':
		return append(b, v...), nil
	default:
		return append(b, canonicalNumber(string(v))...), nil
	}
}

var errNotString = errors.New("not a JSON string")

// appendMinimalString writes s as a JSON string with only the escapes JSON
// requires: quote, backslash and control characters.
func appendMinimalString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// canonicalNumber spells a JSON number one way. An integer literal keeps
// its digits (it may be beyond float64, like a seed); any other number is
// read as float64, the precision the API reads it with, and written as an
// integer when it is one and small enough to be exact, else in the shortest
// form that reads back the same.
func canonicalNumber(s string) string {
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			return "0"
		}
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return s
	}
	if f == 0 {
		return "0"
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
