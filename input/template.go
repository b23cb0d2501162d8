package input

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"

	"github.com/llmbatch/llmbatch/jobs"
)

// Template is a prompt template (Go text/template) that renders one
// dataset record into the user message, or into the request's messages or
// prompt when it renders JSON (see Dataset).
type Template struct {
	name string
	text string
	t    *template.Template
}

// templateFuncs are the functions a template may call besides the
// built-in ones: json renders a value as JSON (use it to put a field
// into a JSON messages array), trim, lower and upper work on strings.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	},
	"trim":  strings.TrimSpace,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
}

// LoadTemplate reads and parses the template file at path.
func LoadTemplate(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--template: %w", err)
	}
	return ParseTemplate(path, string(b))
}

// ParseTemplate parses text as the template called name (its file's path,
// which error messages show). A field the record does not have is an error
// when the template runs (missingkey=error), never an empty string sent by
// mistake; `{{with index . "field"}}` reads a field that may be missing.
func ParseTemplate(name, text string) (*Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		// The parser's message already names the file and line.
		return nil, fmt.Errorf("--template %s", strings.TrimPrefix(err.Error(), "template: "))
	}
	return &Template{name: name, text: text, t: t}, nil
}

// Text is the template's source, which the job's fingerprint covers.
func (t *Template) Text() string { return t.text }

// execute renders data into buf, or returns why it cannot: an error names
// the template, its line and column, and the field it failed at.
func (t *Template) execute(buf *bytes.Buffer, data any) string {
	buf.Reset()
	if err := t.t.Execute(buf, data); err != nil {
		return "template " + strings.TrimPrefix(err.Error(), "template: ")
	}
	return ""
}

// Param is one --param: a body field and its JSON value.
type Param struct {
	Key   string
	Value json.RawMessage
}

// reservedParams are the fields a --param may not set: the template and
// --model own them, and a dataset request is never split into a batch line.
var reservedParams = map[string]string{
	"model":     "use --model",
	"messages":  "the template renders it",
	"prompt":    "the template renders it",
	"custom_id": "use --id-field",
	"metadata":  "the record is the metadata",
}

// ParseParam reads "key=value". The value is JSON when it parses as JSON
// (0.7, 512, true, ["x"], {"type":"json_object"}) and a string otherwise
// (hello, or "hello" quoted). Documented parameters are checked against
// their ranges here, once, rather than on every record.
func ParseParam(s string) (Param, error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return Param{}, fmt.Errorf("--param %q: want KEY=VALUE", s)
	}
	if hint, ok := reservedParams[key]; ok {
		return Param{}, fmt.Errorf("--param %s: %q cannot be set with --param (%s)", key, key, hint)
	}
	var v []byte
	if json.Valid([]byte(value)) {
		var b bytes.Buffer
		_ = json.Compact(&b, []byte(value)) // valid JSON always compacts
		v = b.Bytes()
	} else {
		v = jsonString(value)
	}
	if check, ok := params[key]; ok {
		if reason := check(key, v); reason != "" {
			return Param{}, fmt.Errorf("--param %s: %s", s, reason)
		}
	}
	return Param{Key: key, Value: v}, nil
}

// member is one field of a body being built.
type member struct {
	key   string
	value []byte
}

// bodyOf builds the request body from the rendered text: model first, then
// messages or prompt, then the --param fields in flag order, then any other
// field a rendered JSON object set, in its order. The bytes depend on
// nothing but the text and the options.
func (d *Dataset) bodyOf(text string) (jobs.Endpoint, string, []byte, string) {
	t := strings.TrimSpace(text)
	if t == "" {
		return "", "", nil, "the prompt is empty (the template rendered only white space)"
	}
	if d.opts.Template != nil && json.Valid([]byte(t)) {
		switch {
		case t[0] == '[' && d.opts.endpoint() == jobs.EndpointChat:
			return d.fromMessages(compact([]byte(t)))
		case t[0] == '[' && d.opts.endpoint() == jobs.EndpointEmbeddings:
			return d.assemble(jobs.EndpointEmbeddings, d.opts.Model, member{"input", compact([]byte(t))}, nil)
		case t[0] == '{':
			obj, reason := newObject([]byte(t))
			if reason != "" {
				return "", "", nil, "the template rendered a JSON object, but " + reason
			}
			if obj.has("messages") || obj.has("prompt") || d.opts.endpoint() == jobs.EndpointEmbeddings && obj.has("input") {
				return d.fromObject(obj)
			}
		}
	}
	switch d.opts.endpoint() {
	case jobs.EndpointCompletions:
		return d.assemble(jobs.EndpointCompletions, d.opts.Model, member{"prompt", jsonString(t)}, nil)
	case jobs.EndpointEmbeddings:
		return d.assemble(jobs.EndpointEmbeddings, d.opts.Model, member{"input", jsonString(t)}, nil)
	}
	user := append(append([]byte(`[{"role":"user","content":`), jsonString(t)...), "}]"...)
	return d.fromMessages(user)
}

// fromMessages builds a chat body around a messages array, with the
// --system message first.
func (d *Dataset) fromMessages(msgs []byte) (jobs.Endpoint, string, []byte, string) {
	return d.assemble(jobs.EndpointChat, d.opts.Model, member{"messages", d.withSystem(msgs)}, nil)
}

func (d *Dataset) withSystem(msgs []byte) []byte {
	if d.opts.System == "" || kind(msgs) != "array" {
		return msgs
	}
	sys := append(append([]byte(`{"role":"system","content":`), jsonString(d.opts.System)...), '}')
	if isEmptyArray(msgs) {
		return append(append([]byte{'['}, sys...), ']')
	}
	at := skipSpace(msgs, 1)
	return append(append(append([]byte{'['}, sys...), ','), msgs[at:]...)
}

// fromObject builds a body from a rendered object with "messages" or
// "prompt" (or, for --endpoint embeddings, "input"); its "model" and
// parameters win over --model and --param.
func (d *Dataset) fromObject(obj object) (jobs.Endpoint, string, []byte, string) {
	for _, k := range []string{"custom_id", "metadata", "body"} {
		if obj.has(k) {
			return "", "", nil, fmt.Sprintf("the template rendered an object with %q (%s)", k, map[string]string{
				"custom_id": "use --id-field", "metadata": "the record is kept as the metadata",
				"body": "render the request itself"}[k])
		}
	}
	model := d.opts.Model
	if v, ok := obj.get("model"); ok {
		s, reason := nonEmptyString("model", v)
		if reason != "" {
			return "", "", nil, "in the rendered object: " + reason
		}
		model = s
	}
	ep := jobs.EndpointEmbeddings
	if obj.has("messages") {
		ep = jobs.EndpointChat
	} else if obj.has("prompt") {
		ep = jobs.EndpointCompletions
	}
	first := mainField[ep]
	v, _ := obj.get(first)
	main := member{first, compact(v)}
	if ep == jobs.EndpointChat {
		main.value = d.withSystem(main.value)
	} else if d.opts.System != "" {
		return "", "", nil, fmt.Sprintf("--system needs a chat request, but the template rendered %q", first)
	}
	return d.assemble(ep, model, main, &obj)
}

// assemble writes the body. obj, when not nil, is the rendered object
// whose remaining fields follow the --param ones.
func (d *Dataset) assemble(ep jobs.Endpoint, model string, main member, obj *object) (jobs.Endpoint, string, []byte, string) {
	if model == "" {
		return "", "", nil, `no model: pass --model (or render "model" in a JSON object)`
	}
	ms := []member{{"model", jsonString(model)}, main}
	used := map[string]bool{"model": true, main.key: true}
	for _, p := range d.opts.Params {
		v := []byte(p.Value)
		if obj != nil {
			if ov, ok := obj.get(p.Key); ok {
				v = compact(ov)
			}
		}
		ms = append(ms, member{p.Key, v})
		used[p.Key] = true
	}
	if obj != nil {
		for _, m := range obj.ms {
			if !used[m.Key] {
				ms = append(ms, member{m.Key, compact(obj.b[m.ValueStart:m.End])})
			}
		}
	}
	b := []byte{'{'}
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, jsonString(m.key)...)
		b = append(b, ':')
		b = append(b, m.value...)
	}
	return ep, model, append(b, '}'), ""
}

// compact removes insignificant white space from valid JSON; strings and
// numbers keep their spelling.
func compact(v []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return bytes.Clone(v)
	}
	return b.Bytes()
}
