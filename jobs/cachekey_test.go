package jobs

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

func TestCanonicalBody(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"SortedCompact", `{ "model": "m", "messages": [ {"role":"user", "content":"hi"} ] }`,
			`{"messages":[{"content":"hi","role":"user"}],"model":"m"}`},
		{"Numbers", `{"a":1.0,"b":1e0,"c":0.70,"d":-0.0,"e":-0,"f":12345678901234567890,"g":1.5e300,"h":2E2}`,
			`{"a":1,"b":1,"c":0.7,"d":0,"e":0,"f":12345678901234567890,"g":1.5e+300,"h":200}`},
		{"StreamLeftOut", `{"model":"m","prompt":"p","stream":true,"stream_options":{"include_usage":true}}`,
			`{"model":"m","prompt":"p"}`},
		{"EscapesOneWay", `{"s":"caf\u00e9 \"q\" \u003cb> \/ \n\u0001", "t":"café \"q\" <b> / \u000a\u0001"}`,
			`{"s":"café \"q\" <b> / \u000a\u0001","t":"café \"q\" <b> / \u000a\u0001"}`},
		{"KeysUnescaped", `{"\u0061":1,"b":[{"\u0063":"x"}]}`, `{"a":1,"b":[{"c":"x"}]}`},
		{"NestedOrder", `{"z":{"y":[3,{"b":null,"a":false}]}}`, `{"z":{"y":[3,{"a":false,"b":null}]}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CanonicalBody([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("CanonicalBody(%s)\n got %s\nwant %s", tc.body, got, tc.want)
			}
		})
	}
	for _, bad := range []string{``, `[1]`, `"s"`, `{"a":1} {}`, `{"a":`} {
		if _, err := CanonicalBody([]byte(bad)); err == nil {
			t.Errorf("CanonicalBody(%q): no error", bad)
		}
	}
}

func TestCacheKey(t *testing.T) {
	key := func(e Endpoint, body string, sample int) string {
		t.Helper()
		k, err := CacheKey(e, []byte(body), sample)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key(EndpointChat, `{"model":"m","messages":[],"temperature":0.7}`, 0)
	if len(base) != 64 {
		t.Fatalf("key %q is not 64 hex digits", base)
	}
	if got := key(EndpointChat, `{"temperature":0.70,"messages":[],"model":"m","stream":true}`, 0); got != base {
		t.Error("the same request spelled differently has another key")
	}
	for name, other := range map[string]string{
		"Sample":      key(EndpointChat, `{"model":"m","messages":[],"temperature":0.7}`, 1),
		"Endpoint":    key(EndpointCompletions, `{"model":"m","messages":[],"temperature":0.7}`, 0),
		"Temperature": key(EndpointChat, `{"model":"m","messages":[],"temperature":0.8}`, 0),
		"Model":       key(EndpointChat, `{"model":"n","messages":[],"temperature":0.7}`, 0),
	} {
		if other == base {
			t.Errorf("%s: a different request has the same key", name)
		}
	}
}

// FuzzCanonicalBody checks that the canonical spelling of any JSON object
// is valid JSON that decodes to the same value (without stream fields),
// and is its own canonical spelling.
// fuzzCanon is one Canonicalizer for every input of FuzzCanonicalBody, so
// that leftovers of one body in its buffers would show in the next.
var fuzzCanon Canonicalizer

func FuzzCanonicalBody(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"caf\u00e9 \"q\""}],"temperature":0.70}`,
		`{"b":1e2,"a":[1.0,-0,true,null,{"y":"\ud83d\ude00","x":"\u0001"}],"stream":true}`,
		`{"k":12345678901234567890,"k":"dup"}`,
		`{ }`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		canon, err := CanonicalBody([]byte(body))
		if err != nil {
			return
		}
		if !json.Valid(canon) {
			t.Fatalf("CanonicalBody(%s) = %s: not valid JSON", body, canon)
		}
		again, err := CanonicalBody(canon)
		if err != nil || !bytes.Equal(again, canon) {
			t.Fatalf("not idempotent: %s then %s (%v)", canon, again, err)
		}
		// A reused Canonicalizer (an input reader's) spells it the same,
		// whatever it canonicalized before.
		reused, err := fuzzCanon.ValidBody([]byte(body))
		if err != nil || !bytes.Equal(reused, canon) {
			t.Fatalf("Canonicalizer.ValidBody(%s) = %s (%v), CanonicalBody %s", body, reused, err, canon)
		}
		var in, out map[string]any
		if json.Unmarshal([]byte(body), &in) != nil || !utf8.ValidString(body) {
			return // numbers beyond float64, or bytes decoding replaces
		}
		delete(in, "stream")
		delete(in, "stream_options")
		if err := json.Unmarshal(canon, &out); err != nil || !reflect.DeepEqual(in, out) {
			t.Fatalf("%s decodes to %v, its canonical spelling %s to %v (%v)", body, in, canon, out, err)
		}
	})
}
