package worker

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendJSONString checks that the assembled body spells every string
// as encoding/json does with HTML escaping off, the spelling the goldens
// and the stored answers were written with.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain words", `quote " and \ back`, "<a href=\"x\">&amp;</a>", "tab\tnew\nline\rcr\bbs\fff",
		"\x00\x01\x1f\x7f", "é ü 中文 🙂", "\u2028\u2029", "bad \xff\xfe utf8 \xe2\x82", "\xed\xa0\x80 surrogate"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := appendJSONString([]byte("x"), s)
		if string(got) != "x"+string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("appendJSONString(%q) = %s, want x%s", s, got, want.Bytes())
		}
	})
}
