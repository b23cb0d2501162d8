package worker

import (
	"strings"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
)

// scanner is a position in a body that scanResponse walks: a JSON scanner
// that validates as it goes, skips what it is not asked to read and
// allocates nothing. Every method reports false for invalid JSON and for
// anything outside the plain subset the fast path handles; the caller then
// falls back to encoding/json. The grammar is jsonscan's; the scanner adds
// the position, the nesting depth and the callbacks that read values.
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
	case '"': // jsonscan.String rather than str, which costs a call more
		end, esc, ok := jsonscan.String(s.b, s.i)
		*t = text{lo: s.i + 1, hi: end - 1, esc: esc}
		s.i = end
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
	if s.peek() == 'n' {
		return s.null()
	}
	end, ok := jsonscan.Number(s.b, s.i)
	if !ok {
		return false
	}
	u, ok := tokenCount(s.b[s.i:end])
	if !ok {
		return false
	}
	*n, s.i = u, end
	return true
}

// tokenCount reads the number num if it is an integer from 0 to
// maxTokenCount, spelled without a fraction or an exponent; -0 is 0.
func tokenCount(num []byte) (int64, bool) {
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	var u int64
	for _, c := range num {
		if !isDigit(c) {
			return 0, false
		}
		if u = u*10 + int64(c-'0'); u > maxTokenCount {
			return 0, false
		}
	}
	return u, !neg || u == 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// appendText appends a string's decoded value. It declines invalid UTF-8,
// which encoding/json replaces with U+FFFD byte by byte, and appends
// nothing then.
func appendText(sb *strings.Builder, raw []byte, esc bool) bool {
	switch {
	case esc:
		return jsonscan.Decode(sb, raw)
	case !utf8.Valid(raw):
		return false
	}
	sb.Write(raw)
	return true
}

func (s *scanner) ws() { s.i = jsonscan.SkipSpace(s.b, s.i) }

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
	more, ok := s.enter('{')
	for ok && more {
		key := s.i
		end, _, isKey := jsonscan.String(s.b, key)
		if s.i, ok = jsonscan.Colon(s.b, end); !isKey || !ok || !member(s.b[key+1:end-1]) {
			return false
		}
		s.i, more, ok = jsonscan.Next(s.b, s.i, '}')
	}
	return s.leave(ok)
}

// array scans an array, calling elem to scan each element.
func (s *scanner) array(elem func() bool) bool {
	more, ok := s.enter('[')
	for ok && more {
		if !elem() {
			return false
		}
		s.i, more, ok = jsonscan.Next(s.b, s.i, ']')
	}
	return s.leave(ok)
}

// enter steps into the object or array that open ('{' or '[') begins next;
// more reports whether it has members or items.
func (s *scanner) enter(open byte) (more, ok bool) {
	if s.peek() != open {
		return false, false
	}
	if s.depth++; s.depth > maxScanDepth {
		return false, false
	}
	s.i, more = jsonscan.Open(s.b, s.i)
	return more, true
}

// leave steps out of the container that enter stepped into.
func (s *scanner) leave(ok bool) bool {
	s.depth--
	return ok
}

// skip scans a value we do not read.
func (s *scanner) skip() bool {
	s.ws()
	end, ok := jsonscan.Valid(s.b, s.i, s.depth, maxScanDepth)
	s.i = end
	return ok
}

func (s *scanner) null() bool {
	end, ok := jsonscan.Literal(s.b, s.i, "null")
	s.i = end
	return ok
}

// str scans the string at s.i and returns the bounds of the bytes between
// its quotes; esc reports whether they hold escapes (jsonscan.String says
// what is valid). After ok false, the scanner's position is of no use.
func (s *scanner) str() (lo, hi int, esc, ok bool) {
	end, esc, ok := jsonscan.String(s.b, s.i)
	lo, s.i = s.i+1, end
	return lo, end - 1, esc, ok
}
