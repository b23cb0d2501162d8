package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// encodingJSONDepth is encoding/json's nesting limit.
const encodingJSONDepth = 10000

// FuzzValid holds Valid to encoding/json: with encoding/json's nesting
// limit it accepts exactly what json.Valid accepts, and with a tighter
// limit never more. The seeds are in testdata/fuzz/FuzzValid.
func FuzzValid(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		end, ok := Valid(b, SkipSpace(b, 0), 0, encodingJSONDepth)
		got := ok && SkipSpace(b, end) == len(b)
		if want := json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid = %v", b, got, want)
		}
		end, ok = Valid(b, SkipSpace(b, 0), 0, 2)
		if ok && SkipSpace(b, end) == len(b) && (!got || depth(b) > 2) {
			t.Fatalf("Valid(%q) with limit 2 accepted it (depth %d, json.Valid %v)", b, depth(b), got)
		}
	})
}

// depth is the deepest nesting of brackets outside strings in b.
func depth(b []byte) int {
	d, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end, _, _ := String(b, i)
			i = end - 1
		case '{', '[':
			d++
			deepest = max(deepest, d)
		case '}', ']':
			d--
		}
	}
	return deepest
}

// FuzzSkip holds the walks for valid text to encoding/json: Skip ends a
// value where Valid does, Items yields the items encoding/json decodes,
// and AppendMembers the keys and values, in order. Nothing panics on any
// input. The seeds are in testdata/fuzz/FuzzSkip.
func FuzzSkip(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		start := SkipSpace(b, 0)
		skipEnd, skipOK := Skip(b, start)
		ms, err := AppendMembers(nil, b, map[string]string{"a": "a"})
		for range Items(b) {
		}
		if !json.Valid(b) {
			return
		}
		if validEnd, _ := Valid(b, start, 0, encodingJSONDepth); !skipOK || skipEnd != validEnd {
			t.Fatalf("Skip(%q) = %d, %v; Valid ends at %d", b, skipEnd, skipOK, validEnd)
		}
		switch b[start] {
		case '[':
			checkItems(t, b)
		case '{':
			if err != nil {
				t.Fatalf("AppendMembers(%q): %v", b, err)
			}
			checkMembers(t, b, ms)
		default:
			if err == nil {
				t.Fatalf("AppendMembers(%q) split a non-object", b)
			}
		}
	})
}

func checkItems(t *testing.T, b []byte) {
	t.Helper()
	var want []json.RawMessage
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("json.Unmarshal(%q): %v", b, err)
	}
	n := 0
	for i, item := range Items(b) {
		if i != n || n >= len(want) || !sameJSON(item, want[n]) {
			t.Fatalf("Items(%q): item %d is %q, encoding/json has %q", b, i, item, want)
		}
		n++
	}
	if n != len(want) {
		t.Fatalf("Items(%q) yielded %d items, encoding/json %d", b, n, len(want))
	}
}

// checkMembers compares the members with the keys and values that
// json.Decoder reads from b, in order.
func checkMembers(t *testing.T, b []byte, ms []Member) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.Token() // {
	for i := 0; d.More(); i++ {
		tok, _ := d.Token()
		var v json.RawMessage
		if err := d.Decode(&v); err != nil || i >= len(ms) {
			t.Fatalf("AppendMembers(%q) = %d members; the decoder reads more (%v)", b, len(ms), err)
		}
		m := ms[i]
		// A key's invalid UTF-8 without escapes is kept, the decoder replaces it.
		keyDiffers := utf8.ValidString(m.Key) && m.Key != tok.(string)
		if keyDiffers || !sameJSON(b[m.ValueStart:m.End], v) {
			t.Fatalf("AppendMembers(%q): member %d is %q: %q, the decoder's %q: %q", b, i, m.Key, b[m.ValueStart:m.End], tok, v)
		}
		if key, _, ok := strings.Cut(string(b[m.Start:m.End]), ":"); !ok || !strings.HasPrefix(key, `"`) {
			t.Fatalf("AppendMembers(%q): member %d spans %q", b, i, b[m.Start:m.End])
		}
	}
}

func sameJSON(a, b []byte) bool {
	var x, y bytes.Buffer
	return json.Compact(&x, a) == nil && json.Compact(&y, b) == nil && bytes.Equal(x.Bytes(), y.Bytes())
}

// FuzzUnquote holds Unquote and Decode to encoding/json's decoding of a
// string: Unquote accepts exactly one valid string (no white space
// around it) and decodes it as
// encoding/json does (but keeps a string without escapes as it is), and
// Decode writes the same or declines invalid UTF-8. The seeds are in
// testdata/fuzz/FuzzUnquote.
func FuzzUnquote(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := Unquote(b)
		var want string
		isString := len(b) > 0 && b[0] == '"' && len(TrimSpace(b)) == len(b) && json.Valid(b)
		if ok != isString {
			t.Fatalf("Unquote(%q) ok = %v, encoding/json sees a string: %v", b, ok, isString)
		}
		if !ok {
			return
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		esc := bytes.IndexByte(b, '\\') >= 0
		if (esc || utf8.Valid(b)) && got != want {
			t.Fatalf("Unquote(%q) = %q, encoding/json %q", b, got, want)
		}
		if !esc && got != string(b[1:len(b)-1]) {
			t.Fatalf("Unquote(%q) = %q changed a string without escapes", b, got)
		}
		var sb strings.Builder
		decoded := Decode(&sb, b[1:len(b)-1])
		if decoded != utf8.Valid(b) || (decoded && sb.String() != want) || (!decoded && sb.Len() > 0) {
			t.Fatalf("Decode(%q) = %q, %v; encoding/json %q", b, sb.String(), decoded, want)
		}
	})
}
