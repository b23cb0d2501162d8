package input

import (
	"io"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

func TestSamples(t *testing.T) {
	path := writeInput(t, lines(
		`{"custom_id":"a","model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.70}`,
		`{"model":"m","prompt":"p"}`,
		`{"custom_id":"same","model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7}`,
	))
	read := func(k int) ([]jobs.Request, string) {
		t.Helper()
		r, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s := WithSamples(r, k)
		defer s.Close()
		var out []jobs.Request
		for {
			req, err := s.Next()
			if err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			out = append(out, req)
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		return out, s.Fingerprint()
	}
	one, fp1 := read(1)
	three, fp3 := read(3)
	plain, _ := Fingerprint(path, Options{})
	if fp1 != plain {
		t.Errorf("--samples 1 changed the fingerprint: %s, want the file's %s", fp1, plain)
	}
	if fp3 == fp1 || fp3 != SamplesFingerprint(plain, 3) {
		t.Errorf("--samples 3 fingerprint %s; want SamplesFingerprint(fp, 3), not %s", fp3, fp1)
	}
	wantIDs := []string{"a#0", "a#1", "a#2", "line-2#0", "line-2#1", "line-2#2", "same#0", "same#1", "same#2"}
	if len(three) != len(wantIDs) {
		t.Fatalf("%d requests, want %d", len(three), len(wantIDs))
	}
	keys := map[string]string{}
	for i, r := range three {
		if r.CustomID != wantIDs[i] || r.Line != one[i/3].Line || string(r.Body) != string(one[i/3].Body) {
			t.Errorf("sample %d = %s (line %d), want %s, the body and line of request %d", i, r.CustomID, r.Line, wantIDs[i], i/3)
		}
		if len(r.CacheKey) != 64 {
			t.Errorf("%s: cache key %q", r.CustomID, r.CacheKey)
		}
		if prev, ok := keys[r.CacheKey]; ok && r.Line != 3 {
			t.Errorf("%s has the cache key of %s", r.CustomID, prev)
		}
		keys[r.CacheKey] = r.CustomID
	}
	// Line 3 asks exactly what line 1 asks (0.7 spelled 0.70): same keys,
	// sample by sample.
	for i := range 3 {
		if three[i].CacheKey != three[6+i].CacheKey {
			t.Errorf("sample %d of two identical requests: different cache keys", i)
		}
	}
	if one[0].CustomID != "a" || one[0].CacheKey != three[0].CacheKey {
		t.Errorf("--samples 1: custom_id %q, key of sample 0 %v", one[0].CustomID, one[0].CacheKey == three[0].CacheKey)
	}
}
