package worker

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParseResponse holds the fast path to encoding/json: a body
// scanResponse handles must give the Result decodeResponse gives, and
// parseResponse must answer every body as decodeResponse does, so a body
// the fast path declines reaches the fallback. It also checks that no body
// panics the parser or is modified, that a body it accepts is kept byte for
// byte, and that a rejection is classified. The seeds are in
// testdata/fuzz/FuzzParseResponse.
func FuzzParseResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		in := bytes.Clone(body)
		want, wantErr := decodeResponse(in)
		if fast, ok := scanResponse(body); ok && (wantErr != nil || !reflect.DeepEqual(fast, want)) {
			t.Fatalf("scanResponse = %+v\nencoding/json = %+v, %v", fast, want, wantErr)
		}
		res, cerr := parseResponse(body)
		if !bytes.Equal(body, in) {
			t.Fatalf("parseResponse modified its input")
		}
		if !reflect.DeepEqual(res, want) || !reflect.DeepEqual(cerr, wantErr) {
			t.Fatalf("parseResponse = %+v, %v\nencoding/json = %+v, %v", res, cerr, want, wantErr)
		}
		if cerr == nil {
			if res == nil {
				t.Fatal("parseResponse returned neither a result nor an error")
			}
			if !bytes.Equal(res.Raw, in) {
				t.Fatalf("Raw = %q, want the input %q", res.Raw, in)
			}
			return
		}
		if res != nil {
			t.Fatalf("parseResponse returned a result with error %v", cerr)
		}
		if cerr.Class == "" || cerr.Message == "" {
			t.Fatalf("unclassified error %+v", cerr)
		}
	})
}
