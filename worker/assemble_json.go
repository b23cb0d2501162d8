package worker

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
	"github.com/llmbatch/llmbatch/jobs"
)

// jsonWriter writes the assembled body as encoding/json would, but leaves
// <, > and & alone: the model's text is full of them and providers do not
// escape them either. Values kept raw are compacted, as encoding/json
// compacts a json.RawMessage. Its buffer is sized once, from what was
// assembled, so that a thousand streams ending together each allocate
// their body once rather than a chain of doublings.
type jsonWriter struct {
	buf bytes.Buffer
}

func newJSONWriter(size int) *jsonWriter {
	w := &jsonWriter{}
	w.buf.Grow(size)
	return w
}

func (w *jsonWriter) bytes() []byte { return w.buf.Bytes() }

func (w *jsonWriter) str(s string) {
	w.buf.Write(jsonscan.AppendString(w.buf.AvailableBuffer(), s))
}

func (w *jsonWriter) raw(v []byte) {
	if json.Compact(&w.buf, v) != nil {
		w.buf.Write(v) // not reached: every value kept was validated
	}
}

// object writes the members of one JSON object.
type object struct {
	w *jsonWriter
	n int
}

func (w *jsonWriter) object() object {
	w.buf.WriteByte('{')
	return object{w: w}
}

// key starts a member.
func (o *object) key(k string) {
	if o.n > 0 {
		o.w.buf.WriteByte(',')
	}
	o.n++
	o.w.str(k)
	o.w.buf.WriteByte(':')
}

func (o *object) close() { o.w.buf.WriteByte('}') }

// render writes the assembled body.
func (a *assembler) render(w *jsonWriter) {
	o := w.object()
	o.key("id")
	w.raw(a.topValue("id", `""`))
	o.key("object")
	if a.endpoint == jobs.EndpointCompletions {
		w.str("text_completion")
	} else {
		w.str("chat.completion")
	}
	if v := a.topValue("created", ""); v != nil {
		o.key("created")
		w.raw(v)
	}
	o.key("model")
	w.raw(a.topValue("model", `""`))
	if v := a.topValue("system_fingerprint", ""); v != nil {
		o.key("system_fingerprint")
		w.raw(v)
	}
	o.key("choices")
	w.buf.WriteByte('[')
	for k, c := range a.choices {
		if k > 0 {
			w.buf.WriteByte(',')
		}
		c.acc.render(w, c.index, a.endpoint)
	}
	w.buf.WriteByte(']')
	// Usage is left out, not zeroed, when no chunk carried it.
	if a.usage != nil {
		o.key("usage")
		w.raw(a.usage)
	}
	for _, f := range a.top {
		switch f.key {
		case "id", "object", "created", "model", "system_fingerprint":
			continue
		}
		o.key(f.key)
		w.raw(f.val)
	}
	o.close()
}

// size estimates the length of the assembled body, a little over: the
// buffer it is written to is allocated once.
func (a *assembler) size() int {
	n := 256 + len(a.usage)
	for _, f := range a.top {
		n += len(f.key) + len(f.val) + 4
	}
	for _, c := range a.choices {
		n += c.acc.size()
	}
	return n + n/8
}

func (ch *choiceAcc) size() int {
	n := 128 + ch.message.size() + ch.text.size() + len(ch.finish) + ch.logprobs.size()
	for _, f := range ch.other {
		n += len(f.key) + len(f.val) + 4
	}
	return n
}

// size estimates the length of a merged value as JSON; text is counted
// with room for a few escapes.
func (n *node) size() int {
	switch n.kind {
	case nodeRaw:
		return len(n.raw)
	case nodeString:
		return n.text.Len() + n.text.Len()/16 + 2
	}
	s := 4
	for i, k := range n.keys {
		s += len(k) + 4 + n.vals[i].size()
	}
	for _, it := range n.items {
		s += it.size() + 1
	}
	return s
}

// topValue returns the value kept of a top-level member, else def (nil
// for def "").
func (a *assembler) topValue(key, def string) []byte {
	for _, f := range a.top {
		if f.key == key {
			return f.val
		}
	}
	if def == "" {
		return nil
	}
	return []byte(def)
}

// render writes the choice as the non-streamed answer from endpoint has
// it: a message (chat) or a text (completions).
func (ch *choiceAcc) render(w *jsonWriter, index int, endpoint jobs.Endpoint) {
	chat := endpoint != jobs.EndpointCompletions
	o := w.object()
	o.key("index")
	w.buf.WriteString(strconv.Itoa(index))
	if chat {
		o.key("message")
		ch.renderMessage(w)
	} else {
		o.key("text")
		ch.text.renderOr(w, `""`)
	}
	o.key("finish_reason")
	w.str(ch.finish)
	o.key("logprobs")
	w.raw(ch.logprobs.json())
	for _, f := range ch.other {
		switch f.key {
		case "index", "message", "text", "finish_reason", "logprobs":
			continue // ours, from the deltas
		}
		o.key(f.key)
		w.raw(f.val)
	}
	if chat && ch.text.kind != nodeUnset {
		o.key("text")
		ch.text.render(w)
	}
	if !chat && ch.message.kind == nodeObject {
		o.key("message")
		ch.renderMessage(w)
	}
	o.close()
}

// renderMessage writes the merged deltas: role (by default "assistant")
// and content (null when no delta carried it, as in a tool-call-only
// answer) always, reasoning_content and tool_calls where sent, then the
// members we do not know.
func (ch *choiceAcc) renderMessage(w *jsonWriter) {
	m := &ch.message
	o := w.object()
	o.key("role")
	if r := m.get("role"); r != nil && !(r.kind == nodeString && r.text.Len() == 0) && !r.isNull() {
		r.render(w)
	} else {
		w.str("assistant")
	}
	o.key("content")
	m.get("content").renderOr(w, "null")
	if c := m.get("reasoning_content"); c != nil {
		o.key("reasoning_content")
		c.render(w)
	}
	if c := m.get("tool_calls"); c != nil {
		o.key("tool_calls")
		renderToolCalls(w, c)
	}
	for i, k := range m.keys {
		switch k {
		case "role", "content", "reasoning_content", "tool_calls":
			continue
		}
		o.key(k)
		m.vals[i].render(w)
	}
	o.close()
}

// renderToolCalls writes the merged tool calls in index order, as
// non-streamed answers have them: id, type (by default "function") and
// function (name and arguments) first, without the index of the stream.
func renderToolCalls(w *jsonWriter, n *node) {
	if n.kind != nodeArray {
		n.render(w)
		return
	}
	w.buf.WriteByte('[')
	for k, t := range n.items {
		if k > 0 {
			w.buf.WriteByte(',')
		}
		renderToolCall(w, t)
	}
	w.buf.WriteByte(']')
}

func renderToolCall(w *jsonWriter, t *node) {
	o := w.object()
	o.key("id")
	t.get("id").renderOr(w, `""`)
	o.key("type")
	if typ := t.get("type"); typ != nil && !(typ.kind == nodeString && typ.text.Len() == 0) && !typ.isNull() {
		typ.render(w)
	} else {
		w.str("function")
	}
	o.key("function")
	renderFunction(w, t.get("function"))
	for i, k := range t.keys {
		switch k {
		case "index", "id", "type", "function":
			continue
		}
		o.key(k)
		t.vals[i].render(w)
	}
	o.close()
}

func renderFunction(w *jsonWriter, f *node) {
	if f == nil || f.kind != nodeObject {
		f = &node{kind: nodeObject}
	}
	o := w.object()
	o.key("name")
	f.get("name").renderOr(w, `""`)
	o.key("arguments")
	f.get("arguments").renderOr(w, `""`)
	for i, k := range f.keys {
		if k == "name" || k == "arguments" {
			continue
		}
		o.key(k)
		f.vals[i].render(w)
	}
	o.close()
}

// renderOr renders n, or def when n is nil, unset or null.
func (n *node) renderOr(w *jsonWriter, def string) {
	if n == nil || n.kind == nodeUnset || n.isNull() {
		w.buf.WriteString(def)
		return
	}
	n.render(w)
}

// render writes a merged value.
func (n *node) render(w *jsonWriter) {
	switch n.kind {
	case nodeUnset:
		w.buf.WriteString("null")
	case nodeRaw:
		w.raw(n.raw)
	case nodeString:
		w.str(n.text.String())
	case nodeObject:
		o := w.object()
		for i, k := range n.keys {
			o.key(k)
			n.vals[i].render(w)
		}
		o.close()
	case nodeArray:
		w.buf.WriteByte('[')
		for k, it := range n.items {
			if k > 0 {
				w.buf.WriteByte(',')
			}
			it.render(w)
		}
		w.buf.WriteByte(']')
	}
}
