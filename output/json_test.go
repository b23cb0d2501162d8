package output

import (
	"testing"
)

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
