package jsonscan

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

func TestString(t *testing.T) {
	tests := []struct {
		name, in string
		end      int
		esc, ok  bool
	}{
		{"Plain", `"abc" x`, 5, false, true},
		{"Empty", `""`, 2, false, true},
		{"LongPlain", `"` + strings.Repeat("abcdefgh", 5) + `"`, 42, false, true},
		{"Escapes", `"a\"b\\c\/d\b\f\n\r\t"`, 22, true, true},
		{"Unicode", `"\u00e9\uD83D\uDE00"`, 20, true, true},
		{"InvalidUTF8", "\"\xff\xfe\"", 4, false, true},
		{"NotAString", `abc`, 0, false, false},
		{"Unterminated", `"abc`, 0, false, false},
		{"UnterminatedAfterEscape", `"abc\`, 0, false, false},
		{"Control", "\"a\tb\"", 0, false, false},
		{"ControlAfterEight", "\"abcdefgh\x01\"", 0, false, false},
		{"BadEscape", `"\x41"`, 0, false, false},
		{"ShortUnicode", `"\u12"`, 0, false, false},
		{"BadHex", `"\u12G4"`, 0, false, false},
		{"SingleQuoteEscape", `"\'"`, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end, esc, ok := String([]byte(tt.in), 0)
			if ok != tt.ok || (ok && (end != tt.end || esc != tt.esc)) {
				t.Errorf("String(%q) = %d, %v, %v; want %d, %v, %v", tt.in, end, esc, ok, tt.end, tt.esc, tt.ok)
			}
		})
	}
}

func TestNumber(t *testing.T) {
	tests := []struct {
		in  string
		end int
		ok  bool
	}{
		{"0", 1, true}, {"-0", 2, true}, {"123,", 3, true}, {"01", 1, true}, {"1.5e+3]", 6, true},
		{"2E-7", 4, true}, {"-12.25", 6, true}, {"12345678901234567890", 20, true},
		{"-", 0, false}, {"+1", 0, false}, {".5", 0, false}, {"1.", 0, false}, {"1e", 0, false},
		{"1e+", 0, false}, {"-x", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		end, ok := Number([]byte(tt.in), 0)
		if ok != tt.ok || (ok && end != tt.end) {
			t.Errorf("Number(%q) = %d, %v; want %d, %v", tt.in, end, ok, tt.end, tt.ok)
		}
	}
}

func TestLiteral(t *testing.T) {
	if end, ok := Literal([]byte(`[null]`), 1, "null"); !ok || end != 5 {
		t.Errorf("Literal null = %d, %v; want 5, true", end, ok)
	}
	for _, in := range []string{`nul`, `nulL`, `true`, ``} {
		if _, ok := Literal([]byte(in), 0, "null"); ok {
			t.Errorf("Literal(%q, null) accepted", in)
		}
	}
}

func TestSpace(t *testing.T) {
	b := []byte(" \t\r\n x \n")
	if got := SkipSpace(b, 0); got != 5 {
		t.Errorf("SkipSpace = %d, want 5", got)
	}
	if got := string(TrimSpace(b)); got != "x" {
		t.Errorf("TrimSpace = %q, want x", got)
	}
	if IsSpace('\v') || IsSpace(0xa0) || !IsSpace('\r') {
		t.Error("IsSpace is not JSON's white space")
	}
}

func TestValid(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name, in     string
		depth, limit int
		ok           bool
	}{
		{"Object", ` {"a" : [1, 2.5, -3e2, "x\u00e9\n", {"b": null}], "c": false}`, 0, 10000, true},
		{"Empty", `{}`, 0, 10000, true},
		{"AtLimit", nest(3), 0, 3, true},
		{"OverLimit", nest(4), 0, 3, false},
		{"AlreadyDeep", nest(2), 1, 3, true},
		{"AlreadyTooDeep", nest(3), 1, 3, false},
		{"ScalarAtLimit", `1`, 3, 3, true},
		{"EncodingJSONLimit", nest(10000), 0, 10000, true},
		{"BeyondEncodingJSON", nest(10001), 0, 10000, false},
		{"TrailingComma", `{"a":1,}`, 0, 10000, false},
		{"ArrayTrailingComma", `[1,]`, 0, 10000, false},
		{"KeyWithoutValue", `{"a"}`, 0, 10000, false},
		{"BareKey", `{a:1}`, 0, 10000, false},
		{"LeadingZero", `[01]`, 0, 10000, false},
		{"Truncated", `{"a":[1`, 0, 10000, false},
		{"Nothing", ``, 0, 10000, false},
		{"Word", `tru`, 0, 10000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(tt.in)
			end, ok := Valid(b, SkipSpace(b, 0), tt.depth, tt.limit)
			if ok != tt.ok || (ok && end != len(b)) {
				t.Errorf("Valid = %d, %v; want %d, %v", end, ok, len(b), tt.ok)
			}
		})
	}
}

func TestSkip(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`"a\"b" ,`, `"a\"b"`, true},
		{`{"x":"}","y":[1,{"z":"]"}]}, 2`, `{"x":"}","y":[1,{"z":"]"}]}`, true},
		{`-1.5e3}`, `-1.5e3`, true},
		{`null]`, `null`, true},
		{`{"a":1`, ``, false},
		{`"abc`, ``, false},
		{`,`, ``, false},
		{``, ``, false},
	}
	for _, tt := range tests {
		end, ok := Skip([]byte(tt.in), 0)
		if ok != tt.ok || (ok && tt.in[:end] != tt.want) {
			t.Errorf("Skip(%q) = %d, %v; want %q, %v", tt.in, end, ok, tt.want, tt.ok)
		}
	}
}

func TestOpenColonNext(t *testing.T) {
	b := []byte(`{ "k" : [ ] , "l":{}}`)
	i, more := Open(b, 0)
	if !more || i != 2 {
		t.Fatalf("Open = %d, %v; want 2, true", i, more)
	}
	if i, ok := Colon(b, 5); !ok || i != 8 {
		t.Errorf("Colon = %d, %v; want 8, true", i, ok)
	}
	if i, more := Open(b, 8); more || i != 11 {
		t.Errorf("Open of an empty array = %d, %v; want 11, false", i, more)
	}
	if i, more, ok := Next(b, 11, '}'); !ok || !more || i != 14 {
		t.Errorf("Next after a comma = %d, %v, %v; want 14, true, true", i, more, ok)
	}
	if i, more, ok := Next(b, 20, '}'); !ok || more || i != 21 {
		t.Errorf("Next at the end = %d, %v, %v; want 21, false, true", i, more, ok)
	}
	if _, _, ok := Next(b, 20, ']'); ok {
		t.Error("Next accepted the wrong closing bracket")
	}
	if _, ok := Colon([]byte(`"k" 1`), 3); ok {
		t.Error("Colon accepted a missing colon")
	}
}

func TestItems(t *testing.T) {
	var got []string
	for i, item := range Items([]byte(` [ 1 , "a,]" ,{"b":[2]}, [] ] `)) {
		got = append(got, string(rune('0'+i))+":"+string(item))
	}
	if want := []string{`0:1`, `1:"a,]"`, `2:{"b":[2]}`, `3:[]`}; !slices.Equal(got, want) {
		t.Errorf("Items = %q, want %q", got, want)
	}
	for _, in := range []string{`[]`, `{"a":1}`, ``, ` [ ] `} {
		for range Items([]byte(in)) {
			t.Errorf("Items(%q) yielded an item", in)
		}
	}
	n := 0
	for range Items([]byte(`[1,2,3]`)) {
		if n++; n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("break after 2 items stopped after %d", n)
	}
}

func TestAppendMembers(t *testing.T) {
	known := map[string]string{"model": "model"}
	b := []byte(` { "model" : "m", "a\"b":[1,{"c":"}"}], "\u00e9": 1e-5 ,"model":null} `)
	ms, err := AppendMembers(nil, b, known)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.Key+"="+string(b[m.ValueStart:m.End])+"|"+string(b[m.Start:m.End]))
	}
	want := []string{`model="m"|"model" : "m"`, `a"b=[1,{"c":"}"}]|"a\"b":[1,{"c":"}"}]`,
		`é=1e-5|"\u00e9": 1e-5`, `model=null|"model":null`}
	if !slices.Equal(got, want) {
		t.Errorf("members\n got %q\nwant %q", got, want)
	}
	if unsafe.StringData(ms[0].Key) != unsafe.StringData(known["model"]) {
		t.Error("a known key was allocated again")
	}
	buf := make([]Member, 0, 4)
	if ms, err := AppendMembers(buf, []byte(`{}`), nil); err != nil || len(ms) != 0 {
		t.Errorf("AppendMembers({}) = %v, %v", ms, err)
	}
	for _, bad := range []string{``, `[]`, `"s"`, `{"a"}`, `{"a":1`, `{"a":1,}`, `{a:1}`, `{"a":}`, `{ `} {
		if _, err := AppendMembers(nil, []byte(bad), nil); err == nil {
			t.Errorf("AppendMembers(%q) accepted invalid input", bad)
		}
	}
}

func TestUnquote(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"Plain", `"abc"`, "abc", true},
		{"Escapes", `"q\"b\\s\/\b\f\n\r\t"`, "q\"b\\s/\b\f\n\r\t", true},
		{"Unicode", `"caf\u00e9 \u003c"`, "café <", true},
		{"Pair", `"\ud83d\ude00"`, "😀", true},
		{"LoneHigh", `"\ud800x"`, "\ufffdx", true},
		{"LoneLow", `"\udc00"`, "\ufffd", true},
		{"HighThenLetter", `"\ud800\u0041"`, "\ufffdA", true},
		{"ReversedPair", `"\ude00\ud83d"`, "\ufffd\ufffd", true},
		{"InvalidUTF8Kept", "\"a\xffb\"", "a\xffb", true},
		{"InvalidUTF8Replaced", "\"a\xff\\n\xed\xa0\x80\"", "a\ufffd\n\ufffd\ufffd\ufffd", true},
		{"TrailingBytes", `"a" `, "", false},
		{"NotAString", `null`, "", false},
		{"BadEscape", `"\q"`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Unquote([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Errorf("Unquote(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			var want string
			if tt.ok && json.Unmarshal([]byte(tt.in), &want) == nil && tt.name != "InvalidUTF8Kept" && got != want {
				t.Errorf("Unquote(%q) = %q, encoding/json %q", tt.in, got, want)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	var sb strings.Builder
	if !Decode(&sb, []byte(`a\tb\u00e9`)) || sb.String() != "a\tbé" {
		t.Errorf("Decode = %q, want %q", sb.String(), "a\tbé")
	}
	sb.Reset()
	if Decode(&sb, []byte("a\xff\\n")) || sb.Len() != 0 {
		t.Errorf("Decode of invalid UTF-8 wrote %q, want it declined with nothing written", sb.String())
	}
}

func TestAppendQuoted(t *testing.T) {
	for _, s := range []string{"plain", "q\"b\\", "<a & b>", "\x01\n\u2028", "bad \xff", ""} {
		want, _ := json.Marshal(s)
		if got := AppendQuoted([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("AppendQuoted(%q) = %s, want x%s", s, got, want)
		}
	}
}
