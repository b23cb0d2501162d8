package worker

import (
	"bytes"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// parseHead is the fast path of reading an answer's head (status line and
// headers) on a direct connection, from the bytes already buffered: it
// reports the answer and the length of its head, or ok false for every
// head outside a plain subset, and the caller then reads it with
// http.ReadResponse, which defines what a head means. http.ReadResponse
// costs a dozen allocations an answer, most for the values of headers we
// never read; this one costs one string for the whole head, one slice for
// the values and the map.
//
// The subset: "HTTP/1.1", a status from 200 to 599 but 204 and 304, lines
// that end in CRLF, names of letters, digits and dashes, values of
// printable ASCII and tabs, exactly one Content-Length of plain digits, no
// Transfer-Encoding, Trailer or Pragma (which http.ReadResponse rewrites),
// and a Connection header, if any, that is "close" or "keep-alive". The
// fuzz target holds it to http.ReadResponse's answers.
//
// The answer is hb's, and so are its Header and their values' slices: a
// connection reuses one headBuf for every answer it reads, as nothing
// keeps an answer's head past its body's Close.
func parseHead(b []byte, hb *headBuf) (resp *http.Response, n int, ok bool) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, 0, false
	}
	head := string(b[:end+2]) // each line with its CRLF
	line, rest, _ := cutLine(head)
	code, ok := statusLine(line)
	if !ok {
		return nil, 0, false
	}
	if hb.header == nil {
		hb.header = make(http.Header)
	}
	clear(hb.header)
	hb.resp = http.Response{Status: line[len("HTTP/1.1 "):], StatusCode: code, Proto: "HTTP/1.1", ProtoMajor: 1,
		ProtoMinor: 1, ContentLength: -1, Header: hb.header}
	resp = &hb.resp
	if !headerLines(resp, rest, hb) {
		return nil, 0, false
	}
	return resp, end + 4, true
}

// cutLine splits s at its first CRLF.
func cutLine(s string) (line, rest string, ok bool) {
	i := 0
	for i < len(s) && s[i] != '\r' && s[i] != '\n' {
		i++
	}
	if i+1 >= len(s) || s[i] != '\r' || s[i+1] != '\n' {
		return "", "", false
	}
	return s[:i], s[i+2:], true
}

// statusLine reads "HTTP/1.1 NNN reason" for a status within the subset.
func statusLine(line string) (int, bool) {
	const proto = "HTTP/1.1 "
	if len(line) < len(proto)+3 || line[:len(proto)] != proto {
		return 0, false
	}
	digits := line[len(proto) : len(proto)+3]
	reason := line[len(proto)+3:]
	if reason != "" && reason[0] != ' ' {
		return 0, false
	}
	for i := 0; i < len(reason); i++ {
		if reason[i] < ' ' || reason[i] >= 0x7f {
			return 0, false
		}
	}
	code := 0
	for i := 0; i < 3; i++ {
		if !isDigit(digits[i]) {
			return 0, false
		}
		code = code*10 + int(digits[i]-'0')
	}
	if code < 200 || code > 599 || code == http.StatusNoContent || code == http.StatusNotModified {
		return 0, false
	}
	return code, true
}

// headBuf is where parseHead puts an answer's head.
type headBuf struct {
	resp   http.Response
	header http.Header
	values []string // the values of the keys given once
}

// headerLines reads the header lines in s into resp: its Header,
// ContentLength and Close.
func headerLines(resp *http.Response, s string, hb *headBuf) bool {
	count := strings.Count(s, "\n")
	if cap(hb.values) < count {
		hb.values = make([]string, count)
	}
	values := hb.values[:count]
	for s != "" {
		line, rest, ok := cutLine(s)
		if !ok {
			return false
		}
		s = rest
		key, value, ok := headerLine(line)
		if !ok {
			return false
		}
		switch key {
		case "Transfer-Encoding", "Trailer", "Pragma":
			return false
		case "Content-Length":
			if resp.ContentLength >= 0 || !plainLength(value) {
				return false
			}
			resp.ContentLength, _ = strconv.ParseInt(value, 10, 64)
		case "Connection":
			if resp.Header[key] != nil || resp.Close {
				return false
			}
			switch {
			case asciiEqualFold(value, "close"):
				resp.Close = true // http.ReadResponse drops the header then
				continue
			case !asciiEqualFold(value, "keep-alive"):
				return false
			}
		}
		if vv := resp.Header[key]; vv != nil {
			resp.Header[key] = append(vv, value)
			continue
		}
		values[0] = value // most keys have one value: they share one slice
		resp.Header[key], values = values[:1:1], values[1:]
	}
	return resp.ContentLength >= 0
}

// headerLine splits "Name: value" as textproto does, for a name of
// letters, digits and dashes and a value of printable ASCII and tabs.
func headerLine(line string) (key, value string, ok bool) {
	i := 0
	for i < len(line) && isTokenByte(line[i]) {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ':' {
		return "", "", false
	}
	key, value = line[:i], line[i+1:]
	for j := 0; j < len(value); j++ {
		if c := value[j]; (c < ' ' && c != '\t') || c >= 0x7f {
			return "", "", false
		}
	}
	for value != "" && (value[0] == ' ' || value[0] == '\t') {
		value = value[1:]
	}
	for value != "" && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
		value = value[:len(value)-1]
	}
	return textproto.CanonicalMIMEHeaderKey(key), value, true
}

func isTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '-'
}

// plainLength says whether s is a Content-Length of 1 to 18 digits.
func plainLength(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// asciiEqualFold says whether s equals the lowercase ASCII word but for
// case.
func asciiEqualFold(s, word string) bool {
	if len(s) != len(word) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != word[i] {
			return false
		}
	}
	return true
}
