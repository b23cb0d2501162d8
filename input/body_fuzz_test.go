package input

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/jobs"
)

// FuzzMembers checks the jobs splicing helpers this package relies on to
// edit bodies without re-encoding them (jobs is not ours to change, so the
// fuzz target lives here).
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a":1,"b":[1,{"c":"}"}],"a":2}`,
		`{"custom_id":"x","k":"\"\\","metadata":null}`,
		`{"k\u0022":1e-5,"z":0.10,"big":12345678901234567890}`,
		"{\n\t\"a\" :\r\n true }", `[1]`, `"s"`, `{"a":}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := jobs.Members(b) // must not panic on anything
		// Invalid UTF-8 is excluded: encoding/json replaces it in keys and
		// jobs does not, and input rejects such lines before using jobs.
		if !json.Valid(b) || !utf8.Valid(b) {
			return
		}
		want, isObject := decodeObject(b)
		if !isObject {
			if err == nil {
				t.Fatalf("Members(%q) succeeded on a non-object", b)
			}
			return
		}
		if err != nil {
			t.Fatalf("Members(%q): %v", b, err)
		}
		checkMembers(t, b, ms, want)
		for _, k := range append(keysOf(ms), "custom_id") {
			checkWithout(t, b, k, want)
		}
		checkWith(t, b, want)
	})
}

func decodeObject(b []byte) (map[string]any, bool) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

func keysOf(ms []jobs.Member) []string {
	var ks []string
	for _, m := range ms {
		ks = append(ks, m.Key)
	}
	return ks
}

// checkMembers: the members are the decoder's keys, and each value slice is
// the value the decoder saw (the last one, for a repeated key).
func checkMembers(t *testing.T, b []byte, ms []jobs.Member, want map[string]any) {
	t.Helper()
	last := map[string][]byte{}
	for _, m := range ms {
		last[m.Key] = b[m.ValueStart:m.End]
	}
	if len(last) != len(want) {
		t.Fatalf("Members(%q) found keys %q, the decoder %v", b, keysOf(ms), want)
	}
	for k, raw := range last {
		var v any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&v); err != nil || !reflect.DeepEqual(v, want[k]) {
			t.Fatalf("Members(%q): value of %q is %q, want %v", b, k, raw, want[k])
		}
	}
}

func checkWithout(t *testing.T, b []byte, k string, want map[string]any) {
	t.Helper()
	out, err := jobs.WithoutMembers(b, k)
	if err != nil || !json.Valid(out) {
		t.Fatalf("WithoutMembers(%q, %q) = %q, %v; want valid JSON", b, k, out, err)
	}
	got, _ := decodeObject(out)
	w := maps.Clone(want)
	delete(w, k)
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("WithoutMembers(%q, %q) = %q, decodes to %v, want %v", b, k, out, got, w)
	}
}

func checkWith(t *testing.T, b []byte, want map[string]any) {
	t.Helper()
	out, err := jobs.WithMember(b, "zz_new", []byte("1"))
	if err != nil || !json.Valid(out) {
		t.Fatalf("WithMember(%q) = %q, %v; want valid JSON", b, out, err)
	}
	if _, present := want["zz_new"]; present {
		return // the caller must not add a present key
	}
	got, _ := decodeObject(out)
	w := maps.Clone(want)
	w["zz_new"] = json.Number("1")
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("WithMember(%q) = %q, decodes to %v, want %v", b, out, got, w)
	}
}
