package jsonscan

import "iter"

// Valid returns the index just past the value at b[i] and whether it is
// valid as encoding/json has it, nested no deeper than limit; depth is how
// deep b[i] already is (0 at the top), and an object or array at b[i] is
// one deeper. encoding/json's own limit is 10000; a caller that reads
// untrusted text with a recursive walk of its own may want less.
func Valid(b []byte, i, depth, limit int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '{' || c == '[':
		return validContainer(b, i, depth+1, limit)
	case c == '"':
		end, _, ok := String(b, i)
		return end, ok
	case c == '-' || (c >= '0' && c <= '9'):
		return Number(b, i)
	case c == 't':
		return Literal(b, i, "true")
	case c == 'f':
		return Literal(b, i, "false")
	case c == 'n':
		return Literal(b, i, "null")
	}
	return i, false
}

// validContainer is Valid for the object or array at b[i], which is at
// nesting depth depth.
func validContainer(b []byte, i, depth, limit int) (int, bool) {
	if depth > limit {
		return i, false
	}
	isObject, end := b[i] == '{', byte(']')
	if isObject {
		end = '}'
	}
	i, more := Open(b, i)
	for ok := true; more; {
		if isObject {
			if i, _, ok = String(b, i); ok {
				i, ok = Colon(b, i)
			}
		}
		if ok {
			i, ok = Valid(b, i, depth, limit)
		}
		if !ok {
			return i, false
		}
		if i, more, ok = Next(b, i, end); !ok {
			return i, false
		}
	}
	return i, true
}

// Open steps into the object or array whose opening bracket is b[i]. It
// returns the index of the first member or item and more true, or, for an
// empty one, the index just past its closing bracket and more false.
func Open(b []byte, i int) (next int, more bool) {
	end := byte('}')
	if b[i] == '[' {
		end = ']'
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == end {
		return i + 1, false
	}
	return i, true
}

// Colon steps over the colon after a member's key, which ends at b[i],
// and returns the index of the member's value.
func Colon(b []byte, i int) (int, bool) {
	i = SkipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, false
	}
	return SkipSpace(b, i+1), true
}

// Next steps over what follows a member or an item that ends at b[i] in a
// container closed by end ('}' or ']'): a comma, after which it returns
// the index of the next one and more true, or the closing bracket, after
// which it returns the index just past it and more false. ok is false for
// anything else (and next then of no use). It is kept within the
// compiler's inlining budget, as Colon and Open are: the scanners step
// through every member and item with them.
func Next(b []byte, i int, end byte) (next int, more, ok bool) {
	i = SkipSpace(b, i)
	if i >= len(b) {
		return i, false, false
	}
	if b[i] == ',' {
		return SkipSpace(b, i+1), true, true
	}
	return i + 1, false, b[i] == end
}

// Skip returns the index just past the value at b[i], for text already
// known to be valid: it checks strings but not the rest of the grammar,
// and counts brackets instead of recursing, so it is fast and never
// panics. ok is false where it finds the value unterminated or empty.
func Skip(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		end, _, ok := String(b, i)
		return end, ok
	case '{', '[':
		return skipContainer(b, i)
	}
	j := i // a number, true, false or null
	for j < len(b) && !isDelimiter(b[j]) {
		j++
	}
	return j, j > i
}

func skipContainer(b []byte, i int) (int, bool) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			end, _, ok := String(b, j)
			if !ok {
				return end, false
			}
			j = end - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return j + 1, true
			}
		}
	}
	return len(b), false
}

// isDelimiter reports whether c ends a number or literal.
func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// Items yields the index and the text of each item of the array b (white
// space around it allowed), which must be valid JSON; it yields nothing
// more where it finds otherwise.
func Items(b []byte) iter.Seq2[int, []byte] {
	return func(yield func(int, []byte) bool) {
		b := TrimSpace(b)
		if len(b) == 0 || b[0] != '[' {
			return
		}
		i, more := Open(b, 0)
		for n, ok := 0, true; more; n++ {
			var end int
			if end, ok = Skip(b, i); !ok || !yield(n, b[i:end]) {
				return
			}
			if i, more, ok = Next(b, end, ']'); !ok {
				return
			}
		}
	}
}
