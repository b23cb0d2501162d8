package worker

import "strings"

// addToolCalls merges the tool_calls of a delta into n, the message's, by
// each call's index, and reports whether any carried arguments. Some
// providers leave the index out: then a new id starts a new call and
// anything else continues the last one.
func (a *assembler) addToolCalls(ch *choiceAcc, n *node, v []byte) (bool, *CallError) {
	switch v[0] {
	case 'n':
		if n.kind == nodeUnset {
			n.setRaw(v)
		}
		return false, nil
	case '[':
	default:
		return false, badResponse("bad stream chunk: tool_calls is not an array")
	}
	if n.kind != nodeArray {
		*n = node{kind: nodeArray}
	}
	output := false
	for _, e := range a.m.elements(v, 4) {
		if e[0] == 'n' {
			continue
		}
		d, err := a.readToolCall(e)
		if err != nil {
			return false, err
		}
		i := ch.toolIndex(n, d)
		t := n.item(i)
		if t.kind != nodeObject {
			*t = node{kind: nodeObject}
		}
		a.m.mergeObject(t, e, 5)
		ch.lastTool, ch.nextTool = i, max(ch.nextTool, i+1)
		output = output || d.args
	}
	return output, nil
}

// toolCallDelta is what the merge needs to know of a tool-call delta
// before merging it.
type toolCallDelta struct {
	index int    // noIndex when the delta has none
	id    string // "" when it has none
	args  bool   // it carries arguments
}

// readToolCall checks the members a tool-call delta is merged by.
func (a *assembler) readToolCall(e []byte) (toolCallDelta, *CallError) {
	d := toolCallDelta{index: noIndex}
	if e[0] != '{' {
		return d, badResponse("bad stream chunk: a tool call is not an object")
	}
	ms, _ := a.m.split(e, 5)
	for _, m := range ms {
		v := m.val
		switch string(m.key) {
		case "index":
			i, ok := parseIndex(v)
			if v[0] != 'n' && !ok {
				return d, badResponse("bad stream chunk: a tool call's index is not an integer")
			}
			if ok {
				d.index = i
			}
		case "id":
			if v[0] == '"' {
				var sb strings.Builder
				appendString(&sb, v)
				d.id = sb.String()
			}
		case "function":
			if v[0] != 'n' && v[0] != '{' {
				return d, badResponse("bad stream chunk: a tool call's function is not an object")
			}
			d.args = v[0] == '{' && a.hasArguments(v)
		}
	}
	return d, nil
}

// hasArguments reports whether a function delta carries argument text.
func (a *assembler) hasArguments(fn []byte) bool {
	ms, _ := a.m.split(fn, 6)
	for _, m := range ms {
		if string(m.key) == "arguments" && m.val[0] == '"' && len(m.val) > 2 {
			return true
		}
	}
	return false
}

// toolIndex is the index of the call a delta belongs to.
func (ch *choiceAcc) toolIndex(n *node, d toolCallDelta) int {
	if d.index != noIndex {
		return d.index
	}
	last := n.find(ch.lastTool)
	if last == nil {
		return ch.nextTool
	}
	if id := last.get("id"); d.id != "" && id != nil && id.kind == nodeString &&
		id.text.Len() > 0 && id.text.String() != d.id {
		return ch.nextTool
	}
	return ch.lastTool
}

// find returns the element of n merged by index i, or nil.
func (n *node) find(i int) *node {
	for k, x := range n.index {
		if x == i {
			return n.items[k]
		}
	}
	return nil
}
