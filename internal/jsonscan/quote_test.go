package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
)

// stdString is what encoding/json writes for s with HTML escaping off.
func stdString(t testing.TB, s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func TestAppendString(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"Plain", "hello", `"hello"`},
		{"Empty", "", `""`},
		{"QuoteBackslash", `say "hi" \o/`, `"say \"hi\" \\o/"`},
		{"Controls", "a\nb\tc\rd\be\ff\x00g\x1f", `"a\nb\tc\rd\be\ff\u0000g\u001f"`},
		{"HTMLKept", "<b>&amp;</b>", `"<b>&amp;</b>"`},
		{"Unicode", "héllo 世界 🙂", `"héllo 世界 🙂"`},
		{"LineSeparators", "a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"InvalidUTF8", "a\xffb\xc3", `"a\ufffdb\ufffd"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendString(nil, tt.in))
			if got != tt.want {
				t.Errorf("AppendString(%q) = %s, want %s", tt.in, got, tt.want)
			}
			if std := stdString(t, tt.in); got != std {
				t.Errorf("AppendString(%q) = %s, encoding/json writes %s", tt.in, got, std)
			}
		})
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c\n", "\x00\x7f\u2028", "\xff\xfe<>&", "世界🙂",
		"tab\tnew\nline\rcr\bbs\fff", "\x00\x01\x1f\x7f", "\u2028\u2029", "bad \xff\xfe utf8 \xe2\x82", "\xed\xa0\x80 surrogate"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := string(AppendString([]byte("x"), s))
		if want := "x" + stdString(t, s); got != want {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	})
}
