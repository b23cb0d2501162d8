package worker

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
	"github.com/llmbatch/llmbatch/jobs"
)

// The assembler merges the deltas of a stream into a message the way the
// OpenAI Python SDK's stream accumulator does (accumulate_delta in
// openai/lib/streaming/_deltas.py), so that fields we do not know, such as
// vLLM's and OpenRouter's "reasoning", survive: a string is appended to the
// string of the same name; an object is merged member by member; an array
// of objects that carry an integer "index" is merged element by element by
// that index, any other array is appended to; null never replaces a value.
//
// Where the SDK and "the last value wins" differ, we chose:
//   - a number or a boolean replaces the one before it (the SDK adds
//     numbers, which makes sense for no field providers send in deltas);
//   - identifiers are not text: "index", "type", "role", "id", "name" and
//     "format" keep their last non-empty value. The SDK does that for index
//     and type only, and concatenates a role, a tool call's id, a function
//     name or OpenRouter's reasoning_details format that a provider repeats
//     in every delta (OpenRouter and Ollama repeat the role) into one that
//     does not exist;
//   - a value of another type than the one before it replaces it (the SDK
//     keeps the first).

// nodeKind says what a node holds.
type nodeKind uint8

const (
	nodeUnset  nodeKind = iota // created, no value merged yet
	nodeRaw                    // a number, a boolean, null, or a value kept as sent
	nodeString                 // text, appended to by each delta
	nodeObject
	nodeArray
)

// node is one value being merged from deltas.
type node struct {
	kind nodeKind
	raw  []byte          // nodeRaw: the value as sent
	text strings.Builder // nodeString: the decoded text so far
	// nodeObject: member keys in the order they first appeared, and values.
	keys []string
	vals []*node
	// nodeArray: the elements, and the "index" each was merged by
	// (noIndex for an element appended).
	items []*node
	index []int
}

const noIndex = -1 << 62

// maxMergeDepth bounds the nesting the merge follows; deeper values are
// kept as sent, the last one winning. Deltas nest a few levels at most.
const maxMergeDepth = 32

// member is one member of a JSON object being read: its key as it is
// between the quotes, and its value.
type member struct {
	key []byte
	esc bool // the key holds escapes
	val []byte
}

// merger holds the scratch slices the merge splits objects and arrays
// into, one per nesting depth, so that reading a chunk allocates only for
// what it adds to the assembly.
type merger struct {
	objects [][]member
	arrays  [][][]byte
}

// split returns the members of the object b, validating as it goes; ok is
// false for anything but one object (surrounded by whitespace or not).
// depth is b's nesting depth; the slice is reused by the next call at that
// depth.
func (m *merger) split(b []byte, depth int) ([]member, bool) {
	for len(m.objects) <= depth {
		m.objects = append(m.objects, nil)
	}
	out := m.objects[depth][:0]
	i := jsonscan.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return out, false
	}
	i, more := jsonscan.Open(b, i)
	for ok := true; more; {
		key := i
		end, esc, isKey := jsonscan.String(b, key)
		if i, ok = jsonscan.Colon(b, end); !isKey || !ok {
			return out, false
		}
		val := i
		if i, ok = jsonscan.Valid(b, val, depth+1, jobs.MaxJSONDepth); !ok {
			return out, false
		}
		out = append(out, member{key: b[key+1 : end-1], esc: esc, val: b[val:i]})
		m.objects[depth] = out
		if i, more, ok = jsonscan.Next(b, i, '}'); !ok {
			return out, false
		}
	}
	return out, jsonscan.SkipSpace(b, i) == len(b)
}

// elements returns the elements of the array b, which split has already
// validated as part of its object.
func (m *merger) elements(b []byte, depth int) [][]byte {
	for len(m.arrays) <= depth {
		m.arrays = append(m.arrays, nil)
	}
	out := m.arrays[depth][:0]
	for _, item := range jsonscan.Items(b) {
		out = append(out, item)
		m.arrays[depth] = out
	}
	return out
}

// keyString decodes a member's key. Keys without escapes, nearly all, are
// compared as they are and never reach it.
func keyString(m member) string {
	if !m.esc {
		return string(m.key)
	}
	var s string
	if json.Unmarshal(append(append([]byte{'"'}, m.key...), '"'), &s) != nil {
		return string(m.key)
	}
	return s
}

// child returns the value of the member of object n named by m, adding it
// (unset) when it is new, and its key.
func (n *node) child(m member) (*node, string) {
	if !m.esc {
		for i, k := range n.keys {
			if k == string(m.key) {
				return n.vals[i], k
			}
		}
	}
	key := keyString(m)
	if m.esc {
		for i, k := range n.keys {
			if k == key {
				return n.vals[i], k
			}
		}
	}
	c := &node{}
	n.keys, n.vals = append(n.keys, key), append(n.vals, c)
	return c, key
}

// get returns the member key of object n, or nil.
func (n *node) get(key string) *node {
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// isIdentifier reports whether a string member names something rather than
// carrying text (see the comment at the top of this file).
func isIdentifier(key string) bool {
	switch key {
	case "index", "type", "role", "id", "name", "format":
		return true
	}
	return false
}

// merge merges the delta value v of member key into n.
func (m *merger) merge(n *node, key string, v []byte, depth int) {
	switch {
	case v[0] == 'n':
		if n.kind == nodeUnset {
			n.setRaw(v)
		}
	case v[0] == '"':
		n.mergeString(v, isIdentifier(key))
	case depth >= maxMergeDepth:
		n.setRaw(v)
	case v[0] == '{':
		if n.kind != nodeObject {
			*n = node{kind: nodeObject}
		}
		m.mergeObject(n, v, depth)
	case v[0] == '[':
		if n.kind != nodeArray {
			*n = node{kind: nodeArray}
		}
		m.mergeArray(n, v, depth)
	default:
		n.setRaw(v)
	}
}

func (n *node) setRaw(v []byte) {
	raw := n.raw[:0]
	*n = node{kind: nodeRaw, raw: append(raw, v...)}
}

// mergeString appends the string v to n's text, or, for an identifier,
// replaces it when v is not empty.
func (n *node) mergeString(v []byte, identifier bool) {
	switch {
	case n.kind == nodeString && !identifier:
	case identifier && len(v) == 2 && n.kind != nodeUnset && !n.isNull():
		return // an empty identifier does not replace one
	default:
		*n = node{kind: nodeString}
	}
	appendString(&n.text, v)
}

func (n *node) isNull() bool { return n.kind == nodeRaw && string(n.raw) == "null" }

// appendString appends the value of the JSON string v, which split has
// validated. Invalid UTF-8 becomes U+FFFD, as encoding/json has it.
func appendString(sb *strings.Builder, v []byte) {
	inner := v[1 : len(v)-1]
	if appendText(sb, inner, bytes.IndexByte(inner, '\\') >= 0) {
		return
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		sb.WriteString(s)
	}
}

// mergeObject merges the members of the object v into n.
func (m *merger) mergeObject(n *node, v []byte, depth int) {
	ms, _ := m.split(v, depth)
	for _, mb := range ms {
		c, key := n.child(mb)
		m.merge(c, key, mb.val, depth+1)
	}
}

// mergeArray merges the array v into n: by "index" when every element is
// an object that has an integer one, else by appending.
func (m *merger) mergeArray(n *node, v []byte, depth int) {
	elems := m.elements(v, depth)
	indexes := make([]int, 0, len(elems))
	for _, e := range elems {
		i, ok := m.elementIndex(e, depth+1)
		if !ok {
			indexes = nil
			break
		}
		indexes = append(indexes, i)
	}
	for k, e := range elems {
		if indexes == nil {
			c := &node{}
			m.merge(c, "", e, depth+1)
			n.items, n.index = append(n.items, c), append(n.index, noIndex)
			continue
		}
		m.merge(n.item(indexes[k]), "", e, depth+1)
	}
}

// elementIndex returns the integer "index" of the object e.
func (m *merger) elementIndex(e []byte, depth int) (int, bool) {
	if e[0] != '{' {
		return 0, false
	}
	ms, _ := m.split(e, depth)
	for i := len(ms) - 1; i >= 0; i-- {
		if !ms[i].esc && string(ms[i].key) == "index" {
			return parseIndex(ms[i].val)
		}
	}
	return 0, false
}

// parseIndex reads an index: an integer that fits an int.
func parseIndex(v []byte) (int, bool) {
	i, err := strconv.Atoi(string(v))
	return i, err == nil && i > noIndex
}

// item returns the element of n merged by index i, adding it in index
// order when it is new.
func (n *node) item(i int) *node {
	at := len(n.items)
	for k, x := range n.index {
		if x == i {
			return n.items[k]
		}
		if x != noIndex && x > i && at == len(n.items) {
			at = k
		}
	}
	c := &node{}
	n.items = append(n.items[:at], append([]*node{c}, n.items[at:]...)...)
	n.index = append(n.index[:at], append([]int{i}, n.index[at:]...)...)
	return c
}
