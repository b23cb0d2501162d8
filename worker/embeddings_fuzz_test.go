package worker

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParseEmbeddings holds the embeddings scanner to encoding/json as
// FuzzParseResponse holds the completions one: a body scanEmbeddings
// handles must give the Result decodeEmbeddings gives, parseEmbeddings
// must answer every body as decodeEmbeddings does, never modify it, keep an
// accepted one byte for byte with no completion billed, and classify a
// rejection. The seeds are in testdata/fuzz/FuzzParseEmbeddings.
func FuzzParseEmbeddings(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		in := bytes.Clone(body)
		want, wantErr := decodeEmbeddings(in)
		if fast, ok := scanEmbeddings(body); ok && (wantErr != nil || !reflect.DeepEqual(fast, want)) {
			t.Fatalf("scanEmbeddings = %+v\nencoding/json = %+v, %v", fast, want, wantErr)
		}
		res, cerr := parseEmbeddings(body)
		if !bytes.Equal(body, in) {
			t.Fatal("parseEmbeddings modified its input")
		}
		if !reflect.DeepEqual(res, want) || !reflect.DeepEqual(cerr, wantErr) {
			t.Fatalf("parseEmbeddings = %+v, %v\nencoding/json = %+v, %v", res, cerr, want, wantErr)
		}
		switch {
		case cerr == nil && res == nil:
			t.Fatal("parseEmbeddings returned neither a result nor an error")
		case cerr == nil:
			if !bytes.Equal(res.Raw, in) || res.Content != "" || res.FinishReason != "" {
				t.Fatalf("result %+v: want the input kept as Raw, no content", res)
			}
			if u := res.Usage; u.CompletionTokens != 0 || u.ReasoningTokens != 0 || u.CachedTokens != 0 {
				t.Fatalf("usage %+v bills more than the prompt", u)
			}
		case res != nil:
			t.Fatalf("parseEmbeddings returned a result with error %v", cerr)
		case cerr.Class == "" || cerr.Message == "":
			t.Fatalf("unclassified error %+v", cerr)
		}
	})
}
