package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/jobs"
)

// parsed is a valid line; its slices point into the line buffer and the
// scratch buffers, which the next line overwrites.
type parsed struct {
	customID string
	endpoint jobs.Endpoint
	model    string
	body     []byte        // the request body as the file spells it
	members  []jobs.Member // body's top-level members
	strip    bool          // a bare body with custom_id or metadata to drop
	addModel bool          // no "model" in the body: splice in the default
	metadata []byte        // nil when absent or null
}

// scratch is what a Reader reuses from one line to the next, so that
// reading a line allocates little more than the request it returns.
type scratch struct {
	line, body []jobs.Member
	// model is the last model read: most files name one model on every
	// line, which then shares one string.
	model string
	arena arena
}

// maxCustomID is the longest custom_id accepted, in bytes (OpenAI's limit).
const maxCustomID = 512

// envelopeKeys are the top-level keys of an OpenAI Batch line. Any other
// key is most likely a typo, which would otherwise be silently ignored.
var envelopeKeys = map[string]bool{
	"custom_id": true, "method": true, "url": true, "body": true, "metadata": true,
}

// parseLine validates one non-blank line (BOM and line ending removed) and
// returns what a request needs, or the reason the line is invalid.
func parseLine(raw []byte, n int, opts Options) (parsed, string) {
	return parseLineIn(new(scratch), raw, n, opts)
}

// parseLineIn is parseLine with buffers that sc keeps for the next line.
func parseLineIn(sc *scratch, raw []byte, n int, opts Options) (parsed, string) {
	if !utf8.Valid(raw) {
		return parsed{}, fmt.Sprintf("not valid UTF-8 (column %d)", badUTF8(raw)+1)
	}
	if !validJSON(raw) {
		return parsed{}, invalidJSON(raw)
	}
	raw = trimSpace(raw)
	if raw[0] != '{' {
		return parsed{}, "expected a JSON object, got " + article(raw)
	}
	obj, reason := newObjectIn(sc.line, raw)
	if reason != "" {
		return parsed{}, reason
	}
	sc.line = obj.ms
	if obj.has("body") {
		return parseEnvelope(sc, obj, n, opts)
	}
	return parseBare(sc, obj, n, opts)
}

func badUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

func invalidJSON(raw []byte) string {
	err := json.Unmarshal(raw, new(json.RawMessage))
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset > 0 && se.Offset <= int64(len(raw)) &&
		se.Error() != "unexpected end of JSON input" {
		return fmt.Sprintf("invalid JSON: %v (column %d)", se, se.Offset)
	}
	return fmt.Sprintf("invalid JSON: %v", err)
}

// parseEnvelope reads an OpenAI Batch line: custom_id, method, url and
// metadata from the envelope, the request from "body".
func parseEnvelope(sc *scratch, env object, n int, opts Options) (parsed, string) {
	for _, m := range env.ms {
		if !envelopeKeys[m.Key] {
			return parsed{}, fmt.Sprintf("unknown field %s in a batch line (allowed: custom_id, method, url, body, metadata)", shorten(quote(m.Key)))
		}
	}
	p, reason := lineFields(env, n)
	if reason != "" {
		return p, reason
	}
	if v, ok := env.get("method"); ok && string(v) != `"POST"` {
		return p, fmt.Sprintf(`"method" must be "POST", got %s`, got(v))
	}
	var want jobs.Endpoint
	if v, ok := env.get("url"); ok {
		if want, reason = endpointForURL(v); reason != "" {
			return p, reason
		}
	}
	raw, _ := env.get("body")
	if kind(raw) != "object" {
		return p, fmt.Sprintf(`"body" must be a JSON object, got %s`, kind(raw))
	}
	body, reason := newObjectIn(sc.body, raw)
	if reason != "" {
		return p, "in \"body\": " + reason
	}
	sc.body = body.ms
	p.body, p.members = raw, body.ms
	return p, checkBody(sc, &p, body, want, opts)
}

// endpointForURL maps a batch line's url, with or without the /v1 prefix.
func endpointForURL(v []byte) (jobs.Endpoint, string) {
	var u string
	if kind(v) == "string" {
		u, _ = unquote(v)
	}
	for _, e := range []jobs.Endpoint{jobs.EndpointChat, jobs.EndpointCompletions, jobs.EndpointEmbeddings} {
		if u == e.BatchURL() || u == string(e) {
			return e, ""
		}
	}
	return "", fmt.Sprintf(`"url" must be "/v1/chat/completions", "/v1/completions" or "/v1/embeddings", got %s`, got(v))
}

// parseBare reads a bare request body, whose custom_id and metadata are
// ours, not the API's.
func parseBare(sc *scratch, obj object, n int, opts Options) (parsed, string) {
	p, reason := lineFields(obj, n)
	if reason != "" {
		return p, reason
	}
	p.body, p.members = obj.b, obj.ms
	p.strip = obj.has("custom_id") || obj.has("metadata")
	return p, checkBody(sc, &p, obj, "", opts)
}

// lineFields reads custom_id (default line-N) and metadata.
func lineFields(obj object, n int) (parsed, string) {
	var p parsed
	if v, ok := obj.get("custom_id"); !ok {
		p.customID = "line-" + strconv.Itoa(n)
	} else {
		s, reason := nonEmptyString("custom_id", v)
		if reason != "" {
			return p, reason
		}
		if len(s) > maxCustomID {
			return p, fmt.Sprintf(`"custom_id" is %d bytes long, the limit is %d`, len(s), maxCustomID)
		}
		p.customID = s
	}
	if v, ok := obj.get("metadata"); ok && kind(v) != "null" {
		p.metadata = v
	}
	return p, ""
}

// checkBody decides the endpoint and model of a request body and checks its
// documented parameters.
func checkBody(sc *scratch, p *parsed, body object, want jobs.Endpoint, opts Options) string {
	if reason := bodyEndpoint(p, body, want); reason != "" {
		return reason
	}
	if reason := bodyModel(sc, p, body, opts); reason != "" {
		return reason
	}
	for _, m := range body.ms {
		if check, ok := checkFor(p, m.Key); ok {
			if reason := check(m.Key, body.b[m.ValueStart:m.End]); reason != "" {
				return reason
			}
		}
	}
	return ""
}

// bodyEndpoint decides the endpoint by the body's main field: "messages"
// (chat), "prompt" (completions), else "input" (embeddings). A chat or
// completions body may carry an "input" of its own, which is sent as given.
func bodyEndpoint(p *parsed, body object, want jobs.Endpoint) string {
	msgs, prompt := body.has("messages"), body.has("prompt")
	switch {
	case msgs && prompt:
		return `both "messages" and "prompt" (a chat body has "messages", a completions body "prompt")`
	case msgs:
		p.endpoint = jobs.EndpointChat
	case prompt:
		p.endpoint = jobs.EndpointCompletions
	case body.has("input"):
		p.endpoint = jobs.EndpointEmbeddings
	case body.has("url") || body.has("method"):
		return `no "body" (a line with "url" or "method" is an OpenAI Batch line, which needs one)`
	default:
		return `no "messages" (chat) or "prompt" (completions)`
	}
	if want != "" && want != p.endpoint {
		return fmt.Sprintf(`"url" is %q but the body has %q, not %q`,
			want.BatchURL(), mainField[p.endpoint], mainField[want])
	}
	return ""
}

// mainField is the body field that makes a request one of an endpoint.
var mainField = map[jobs.Endpoint]string{jobs.EndpointChat: "messages",
	jobs.EndpointCompletions: "prompt", jobs.EndpointEmbeddings: "input"}

func bodyModel(sc *scratch, p *parsed, body object, opts Options) string {
	v, ok := body.get("model")
	if !ok {
		if opts.DefaultModel == "" {
			return `no "model" (set it in the line or pass --model)`
		}
		p.model, p.addModel = opts.DefaultModel, true
		return ""
	}
	if v = trimSpace(v); len(v) > 2 && v[0] == '"' && string(v[1:len(v)-1]) == sc.model {
		p.model = sc.model // the same spelling, without escapes: the same model
		return ""
	}
	s, reason := nonEmptyString("model", v)
	p.model = s
	if reason == "" && !bytes.Contains(v, []byte{'\\'}) {
		sc.model = s
	}
	return reason
}

// request builds the request from p. Body and Metadata are cut from the
// arena: p's slices point into the line buffer, which the next line
// overwrites.
func (p parsed) request(n int, a *arena) (jobs.Request, string) {
	var body []byte
	switch {
	case p.addModel:
		src := p.body
		if p.strip {
			src = jobs.AppendWithoutMembers(nil, p.body, p.members, "custom_id", "metadata")
		}
		b, err := jobs.WithMember(src, "model", []byte(quote(p.model)))
		if err != nil {
			return jobs.Request{}, fmt.Sprintf("cannot edit the body: %v", err)
		}
		body = a.copy(b)
	case p.strip:
		body = a.cut(jobs.AppendWithoutMembers(a.next(len(p.body)), p.body, p.members, "custom_id", "metadata"))
	default:
		body = a.copy(p.body)
	}
	var meta []byte
	if p.metadata != nil {
		meta = a.copy(p.metadata)
	}
	return jobs.Request{
		Line:     n,
		CustomID: p.customID,
		Endpoint: p.endpoint,
		Model:    p.model,
		Body:     body,
		Metadata: meta,
		Status:   jobs.StatusPending,
	}, ""
}

// arena hands out the bodies and metadata of requests from chunks of
// arenaChunk bytes, one allocation per chunk instead of two per line. A
// chunk is freed when no request cut from it is left.
type arena struct{ buf []byte }

const arenaChunk = 64 << 10

// next returns an empty slice with room for at least n bytes, at the free
// end of the current chunk; cut then takes what was appended to it.
func (a *arena) next(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(arenaChunk, n))
	}
	return a.buf[len(a.buf):len(a.buf)]
}

// cut takes b, a slice next returned with bytes appended, from the arena.
func (a *arena) cut(b []byte) []byte {
	if len(b) > cap(a.buf)-len(a.buf) {
		return b // it outgrew the room, so append gave it an array of its own
	}
	a.buf = a.buf[:len(a.buf)+len(b)]
	return b[:len(b):len(b)]
}

func (a *arena) copy(b []byte) []byte { return a.cut(append(a.next(len(b)), b...)) }
