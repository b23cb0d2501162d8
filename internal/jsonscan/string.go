package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// String scans the string whose opening quote is b[i] and returns the
// index just past its closing quote; esc reports whether it holds
// backslash escapes. It reports ok false for anything but a string,
// unterminated or holding a control character or a malformed escape.
// Other bytes, even invalid UTF-8, are accepted, as encoding/json accepts
// them (it replaces those only when it decodes the string).
func String(b []byte, i int) (end int, esc, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false, false
	}
	for i++; i < len(b); {
		i = plainRun(b, i)
		switch {
		case i == len(b) || b[i] < 0x20:
			return i, false, false
		case b[i] == '"':
			return i + 1, esc, true
		}
		n := escapeLen(b[i+1:]) // b[i] is a backslash
		if n == 0 {
			return i, false, false
		}
		esc = true
		i += 1 + n
	}
	return i, false, false
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

// plain marks the bytes a string holds as they are: not a quote, a
// backslash or a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

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

// unescaped maps the letter of a one-letter escape to the byte it stands
// for; the other letters map to 0.
var unescaped = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

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

// Unquote returns the value of the string raw, quotes included, and
// whether raw is exactly one valid string. A string without escapes keeps
// its bytes as they are, even invalid UTF-8, so that most strings need no
// decoding; one with escapes is decoded as encoding/json decodes it: as
// Decode does, and each byte of invalid UTF-8 becomes U+FFFD.
func Unquote(raw []byte) (string, bool) {
	end, esc, ok := String(raw, 0)
	switch {
	case !ok || end != len(raw):
		return "", false
	case !esc:
		return string(raw[1 : end-1]), true
	}
	return decoded(raw[1 : end-1]), true
}

// decoded returns the value of a string with escapes, raw being the text
// between its quotes, as encoding/json decodes it.
func decoded(raw []byte) string {
	var sb strings.Builder
	sb.Grow(len(raw)) // enough unless invalid UTF-8 is replaced
	decode(&sb, raw, !utf8.Valid(raw))
	return sb.String()
}

// Decode writes to sb the value of a string: raw is the text between its
// quotes, which String has accepted. It decodes as encoding/json does: a
// surrogate pair is one rune, and a lone surrogate is U+FFFD and leaves
// what follows it alone. For raw that is not valid UTF-8, which
// encoding/json decodes with U+FFFD for each invalid byte (Unquote does
// too), it writes nothing and reports false.
func Decode(sb *strings.Builder, raw []byte) bool {
	if !utf8.Valid(raw) {
		return false
	}
	decode(sb, raw, false)
	return true
}

// decode is Decode, replacing invalid UTF-8 where asked to.
func decode(sb *strings.Builder, raw []byte, replace bool) {
	for len(raw) > 0 {
		n := bytes.IndexByte(raw, '\\')
		if n < 0 {
			n = len(raw)
		}
		if replace {
			writeReplacing(sb, raw[:n])
		} else {
			sb.Write(raw[:n])
		}
		if n == len(raw) {
			return
		}
		raw = raw[n+1:] // String checked that a valid escape follows
		if raw[0] == 'u' {
			var r rune
			r, raw = unescapeRune(raw)
			sb.WriteRune(r)
			continue
		}
		sb.WriteByte(unescaped[raw[0]])
		raw = raw[1:]
	}
}

// writeReplacing writes b with each byte of invalid UTF-8 replaced by
// U+FFFD.
func writeReplacing(sb *strings.Builder, b []byte) {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		sb.WriteRune(r)
		b = b[n:]
	}
}

// unescapeRune decodes u1234 (the backslash already read) as encoding/json
// does.
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

// hex4 decodes four hex digits that String has checked.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r = r<<4 | rune(hexVal(c))
	}
	return r
}

// AppendQuoted appends s as a JSON string spelled as encoding/json spells
// it (<, > and & escaped, invalid UTF-8 as U+FFFD), so that what we write
// matches what encoding/json would have written.
func AppendQuoted(dst []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(dst, q...)
}
