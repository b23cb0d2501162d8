package worker

import (
	"bytes"
	"encoding/binary"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/jobs"
)

// scanner is a position in a body that scanResponse walks: a JSON scanner
// that validates as it goes, skips what it is not asked to read and
// allocates nothing. Every method reports false for invalid JSON and for
// anything outside the plain subset the fast path handles; the caller then
// falls back to encoding/json.
type scanner struct {
	b     []byte
	i     int
	depth int
}

// maxScanDepth bounds the nesting the scanner follows. encoding/json allows
// 10000; no provider nests anywhere near this, and deeper bodies go to the
// fallback.
const maxScanDepth = 512

// text is a string value as a position in the body: the bytes between its
// quotes. Decoding waits until the whole body has proved valid, and happens
// only for the values kept.
type text struct {
	lo, hi int
	esc    bool // holds backslash escapes
}

// fields scans an object with keys we read, or null (isObject false). It
// calls read to scan the value of keys[k] and skips the other members.
func (s *scanner) fields(keys []string, read func(k int) bool) (isObject, ok bool) {
	if s.peek() == 'n' {
		return false, s.null()
	}
	var seen uint
	return true, s.object(func(key []byte) bool {
		k, ok := pick(key, keys, &seen)
		switch {
		case !ok:
			return false
		case k < 0:
			return s.skip()
		}
		return read(k)
	})
}

// string reads a string, or null, which leaves t empty as encoding/json
// leaves the field (nil, or the string's zero value).
func (s *scanner) string(t *text) bool {
	switch s.peek() {
	case '"':
		lo, hi, esc, ok := s.str()
		*t = text{lo: lo, hi: hi, esc: esc}
		return ok
	case 'n':
		return s.null()
	}
	return false
}

// int reads a token count written as an integer from 0 to maxTokenCount,
// or null, which leaves n zero. Anything else (a fraction, an exponent, a
// negative, a larger figure) is declined: readCount decides what it means.
func (s *scanner) int(n *int64) bool {
	switch c := s.peek(); {
	case c == 'n':
		return s.null()
	case c != '-' && !isDigit(c):
		return false
	}
	b, i := s.b, s.i
	neg := b[i] == '-'
	if neg {
		i++
	}
	start := i
	var u uint64
	for ; i < len(b) && isDigit(b[i]) && i-start < 19; i++ {
		u = u*10 + uint64(b[i]-'0') // 19 digits cannot overflow uint64
	}
	switch {
	case i == start, i-start > 1 && b[start] == '0':
		return false
	case i < len(b) && (isDigit(b[i]) || b[i] == '.' || b[i] == 'e' || b[i] == 'E'):
		return false
	case u > maxTokenCount, neg && u != 0:
		return false
	}
	*n = int64(u) // -0 is 0
	s.i = i
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// appendText appends a string's decoded value. It declines invalid UTF-8,
// which encoding/json replaces with U+FFFD byte by byte.
func appendText(sb *strings.Builder, raw []byte, esc bool) bool {
	if !utf8.Valid(raw) {
		return false
	}
	if !esc {
		sb.Write(raw)
		return true
	}
	for len(raw) > 0 {
		n := bytes.IndexByte(raw, '\\')
		if n < 0 {
			sb.Write(raw)
			break
		}
		sb.Write(raw[:n])
		raw = raw[n+1:] // str checked that a valid escape follows
		if raw[0] == 'u' {
			var r rune
			r, raw = unescapeRune(raw)
			sb.WriteRune(r)
			continue
		}
		sb.WriteByte(unescaped[raw[0]])
		raw = raw[1:]
	}
	return true
}

// unescapeRune decodes u1234 (the backslash already read) as encoding/json
// does: a surrogate pair is one rune, a lone surrogate is U+FFFD and leaves
// what follows it alone.
func unescapeRune(raw []byte) (rune, []byte) {
	r, raw := hex4(raw[1:5]), raw[5:]
	if !utf16.IsSurrogate(r) {
		return r, raw
	}
	if len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
		if pair := utf16.DecodeRune(r, hex4(raw[2:6])); pair != utf8.RuneError {
			return pair, raw[6:]
		}
	}
	return utf8.RuneError, raw
}

// unescaped maps the letter of a one-letter escape to the byte it stands
// for; the other letters map to 0.
var unescaped = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hex4 decodes four hex digits that str has checked.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r = r<<4 | rune(hexVal(c))
	}
	return r
}

// hexVal returns the value of a hex digit, or -1.
func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// The scanner's grammar, which is JSON's (RFC 8259); encoding/json checks
// a body against the same grammar before decoding it.

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end (a 0
// byte there would be invalid anyway).
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// object scans an object, calling member with the raw bytes of each key;
// member must scan the value.
func (s *scanner) object(member func(key []byte) bool) bool {
	if s.peek() != '{' || !s.enter() {
		return false
	}
	if s.peek() == '}' {
		return s.leave()
	}
	for {
		if s.peek() != '"' {
			return false
		}
		lo, hi, _, ok := s.str()
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		if !member(s.b[lo:hi]) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			return s.leave()
		default:
			return false
		}
	}
}

// array scans an array, calling elem to scan each element.
func (s *scanner) array(elem func() bool) bool {
	if s.peek() != '[' || !s.enter() {
		return false
	}
	if s.peek() == ']' {
		return s.leave()
	}
	for {
		if !elem() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			return s.leave()
		default:
			return false
		}
	}
}

// enter steps into the container opening at s.i.
func (s *scanner) enter() bool {
	s.i++
	s.depth++
	return s.depth <= maxScanDepth
}

// leave steps out of the container closing at s.i.
func (s *scanner) leave() bool {
	s.i++
	s.depth--
	return true
}

// skip scans a value we do not read.
func (s *scanner) skip() bool {
	s.ws()
	end, ok := jobs.ValidValue(s.b, s.i, s.depth, maxScanDepth)
	s.i = end
	return ok
}

func (s *scanner) null() bool {
	const lit = "null"
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// str scans the string at s.i and returns the bounds of the bytes between
// its quotes; esc reports whether they hold escapes. Control characters
// and malformed escapes are invalid; other bytes, even invalid UTF-8, are
// not (encoding/json replaces those only when it decodes the string).
func (s *scanner) str() (lo, hi int, esc, ok bool) {
	b := s.b
	lo = s.i + 1
	for i := lo; i < len(b); {
		i = plainRun(b, i)
		switch {
		case i == len(b) || b[i] < 0x20:
			return 0, 0, false, false
		case b[i] == '"':
			s.i = i + 1
			return lo, i, esc, true
		}
		n := escapeLen(b[i+1:]) // b[i] is a backslash
		if n == 0 {
			return 0, 0, false, false
		}
		esc = true
		i += 1 + n
	}
	return 0, 0, false, false
}

// plainRun returns the index of the first byte at or after i that a string
// cannot hold as it is, or len(b). Strings are most of a body's bytes, so
// it looks at eight bytes at a time while none of them is such a byte.
func plainRun(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if !plainWord(binary.LittleEndian.Uint64(b[i:])) {
			break
		}
	}
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
}

// plainWord reports whether none of the eight bytes of x is a quote, a
// backslash or a control character. Each test is the classic one for "a
// byte less than n": subtracting n from every byte sets the top bit of a
// byte that was less, and clears it for every byte when none was.
func plainWord(x uint64) bool {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	quote, backslash := x^(ones*'"'), x^(ones*'\\')
	control := (x - ones*0x20) &^ x
	return (control|(quote-ones)&^quote|(backslash-ones)&^backslash)&tops == 0
}

// escapeLen returns the length of the escape after a backslash, or 0 if it
// is malformed.
func escapeLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	if unescaped[b[0]] != 0 {
		return 1
	}
	if b[0] != 'u' || len(b) < 5 {
		return 0
	}
	for _, c := range b[1:5] {
		if hexVal(c) < 0 {
			return 0
		}
	}
	return 5
}

// plain marks the bytes a string holds as they are: not a quote, a
// backslash or a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
