package jsonscan

import "errors"

// Member is one top-level member of a JSON object: b[Start:End] is the whole
// `"key": value` text and b[ValueStart:End] the value.
type Member struct {
	Key        string
	Start      int
	ValueStart int
	End        int
}

// ErrNotObject is what AppendMembers returns for anything but an object.
var ErrNotObject = errors.New("not a JSON object")

// AppendMembers appends the top-level members of the JSON object b to dst,
// in order, repeated keys included. b must be valid JSON (it is read as
// Skip reads it); for anything else it returns ErrNotObject or members of
// no use, but never panics. A key that is a key of known (a map from each
// key to itself) is taken from it rather than allocated, so that callers
// that split many objects of the same shape share their keys' strings.
func AppendMembers(dst []Member, b []byte, known map[string]string) ([]Member, error) {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, ErrNotObject
	}
	out := dst
	i, more := Open(b, i)
	if more && out == nil {
		out = make([]Member, 0, 8) // most bodies and messages have fewer members
	}
	for more {
		start := i
		keyEnd, esc, ok := String(b, i)
		if !ok {
			return nil, ErrNotObject
		}
		vs, ok := Colon(b, keyEnd)
		if !ok {
			return nil, ErrNotObject
		}
		ve, ok := Skip(b, vs)
		if !ok {
			return nil, ErrNotObject
		}
		out = append(out, Member{Key: key(b[start+1:keyEnd-1], esc, known), Start: start, ValueStart: vs, End: ve})
		if i, more, ok = Next(b, ve, '}'); !ok {
			return nil, ErrNotObject
		}
	}
	return out, nil
}

// key decodes the text between a key's quotes.
func key(raw []byte, esc bool, known map[string]string) string {
	if esc {
		return decoded(raw)
	}
	if k, ok := known[string(raw)]; ok {
		return k
	}
	return string(raw)
}
