package worker

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"testing"
)

func TestParseHead(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"Plain", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", true},
		{"LowercaseNames", "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: r1\r\ncontent-length: 2\r\n\r\n{}", true},
		{"Repeated", "HTTP/1.1 429 Too Many Requests\r\nVary: a\r\nvary:  b \t\r\nContent-Length: 0\r\n\r\n", true},
		{"ConnectionClose", "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 2\r\n\r\n{}", true},
		{"NoReason", "HTTP/1.1 500\r\nContent-Length: 0\r\n\r\n", true},
		{"Incomplete", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", false},
		{"HTTP10", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", false},
		{"Informational", "HTTP/1.1 103 Early Hints\r\nContent-Length: 0\r\n\r\n", false},
		{"NoContent", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false},
		{"Chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", false},
		{"NoLength", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}", false},
		{"TwoLengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", false},
		{"SignedLength", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}", false},
		{"BareLF", "HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\n{}", false},
		{"Continuation", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\n{}", false},
		{"Underscore", "HTTP/1.1 200 OK\r\nX_A: a\r\nContent-Length: 2\r\n\r\n{}", false},
		{"NonASCIIValue", "HTTP/1.1 200 OK\r\nX-A: \xc3\xa9\r\nContent-Length: 2\r\n\r\n{}", false},
		{"Pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\n{}", false},
		{"OtherConnection", "HTTP/1.1 200 OK\r\nConnection: upgrade\r\nContent-Length: 2\r\n\r\n{}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _, ok := parseHead([]byte(tt.in), &headBuf{})
			if ok != tt.ok {
				t.Fatalf("parseHead ok = %v, want %v", ok, tt.ok)
			}
			if ok {
				checkHead(t, []byte(tt.in), resp)
			}
		})
	}
}

// checkHead fails unless resp, parseHead's answer to in, is what
// http.ReadResponse makes of in.
func checkHead(t *testing.T, in []byte, resp *http.Response) {
	t.Helper()
	want, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(in)), nil)
	if err != nil {
		t.Fatalf("parseHead accepted %q, which http.ReadResponse refuses: %v", in, err)
	}
	got := [...]any{resp.Status, resp.StatusCode, resp.Proto, resp.ProtoMajor, resp.ProtoMinor, resp.Header,
		resp.ContentLength, resp.Close, resp.TransferEncoding, resp.Trailer}
	exp := [...]any{want.Status, want.StatusCode, want.Proto, want.ProtoMajor, want.ProtoMinor, want.Header,
		want.ContentLength, want.Close, want.TransferEncoding, want.Trailer}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("parseHead(%q) = %#v\nhttp.ReadResponse = %#v", in, got, exp)
	}
}

// FuzzDirectHead holds parseHead to http.ReadResponse: a head it accepts
// must mean the same there, and be followed by the same body. The seeds
// are in testdata/fuzz/FuzzDirectHead.
func FuzzDirectHead(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		// The headBuf holds an earlier answer, as a kept connection's does.
		var hb headBuf
		earlier := "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nVary: a\r\nVary: b\r\nContent-Length: 0\r\n\r\n"
		if _, _, ok := parseHead([]byte(earlier), &hb); !ok {
			t.Fatal("parseHead declined the earlier answer")
		}
		resp, n, ok := parseHead(in, &hb)
		if !bytes.Equal(in, orig) {
			t.Fatal("parseHead modified its input")
		}
		if !ok {
			return
		}
		checkHead(t, in, resp)
		want, _ := http.ReadResponse(bufio.NewReader(bytes.NewReader(in)), nil)
		wantBody, wantErr := io.ReadAll(want.Body)
		body := in[n:]
		if int64(len(body)) > resp.ContentLength {
			body = body[:resp.ContentLength]
		}
		short := int64(len(body)) < resp.ContentLength
		if !bytes.Equal(body, wantBody) || short != errors.Is(wantErr, io.ErrUnexpectedEOF) {
			t.Fatalf("body after parseHead %q (short %v), http.ReadResponse's %q, %v", body, short, wantBody, wantErr)
		}
	})
}
