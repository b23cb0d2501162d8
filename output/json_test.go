package output

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
			got := string(appendString(nil, tt.in))
			if got != tt.want {
				t.Errorf("appendString(%q) = %s, want %s", tt.in, got, tt.want)
			}
			if std := stdString(t, tt.in); got != std {
				t.Errorf("appendString(%q) = %s, encoding/json writes %s", tt.in, got, std)
			}
		})
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c\n", "\x00\x7f\u2028", "\xff\xfe<>&", "世界🙂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := string(appendString([]byte("x"), s))
		if want := "x" + stdString(t, s); got != want {
			t.Fatalf("appendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	})
}

func TestAppendRaw(t *testing.T) {
	var r rawAppender
	tests := []struct{ name, in, want string }{
		{"Verbatim", `{"a": 1.50e0, "b":[1 ,2]}`, `{"a": 1.50e0, "b":[1 ,2]}`},
		{"Pretty", "{\n  \"a\": 1.50,\n  \"b\": \"x y\"\n}\n", `{"a":1.50,"b":"x y"}`},
		{"CRLF", "[1,\r\n2]", `[1,2]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.appendRaw([]byte("x"), []byte(tt.in))
			if err != nil || string(got) != "x"+tt.want {
				t.Errorf("appendRaw(%q) = %s, %v; want x%s", tt.in, got, err, tt.want)
			}
		})
	}
	lenient := []struct{ name, in, want string }{
		{"JSON", `{"error":"x"}`, `{"error":"x"}`},
		{"Text", "Bad Gateway\n", `"Bad Gateway\n"`},
		{"Empty", "", `{}`},
		{"Blank", " \n", `{}`},
		{"PrettyJSON", "{\n\"e\": 1}\n", `{"e":1}`},
	}
	for _, tt := range lenient {
		t.Run("Lenient"+tt.name, func(t *testing.T) {
			if got := string(r.appendLenient(nil, []byte(tt.in), "{}")); got != tt.want {
				t.Errorf("appendLenient(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
