package fakeapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

const (
	keepAlive         = ": keep-alive\n\n"
	keepAliveInterval = 50 * time.Millisecond
	maxDeltas         = 4 // content is sent in at most this many deltas
)

// stream writes rep as server-sent events, damaged as f says. Only a stream
// whose [DONE] was written counts as served.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, cfg *Config, req *request, rep *reply, f Fault) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	status := http.StatusOK
	if f.Status != 0 {
		status = f.Status
	}
	s.writeHead(w, status)
	rc := http.NewResponseController(w)
	if f.KeepAliveOnly {
		s.keepAliveOnly(r.Context(), w, rc)
		return
	}
	events := rep.styled(cfg).events(req.StreamOptions.IncludeUsage)
	if f.StreamError != "" {
		events = append(events[:min(2, len(events))], []byte(f.StreamError))
	}
	bad := -1
	if f.BadJSON {
		bad = min(1, len(events)-1)
		s.stats.malformed.Add(1)
	}
	for i, ev := range events {
		if f.CutAfterChunks > 0 && i == f.CutAfterChunks {
			s.cut(w)
			return
		}
		if i == bad {
			ev = ev[:len(ev)/2]
		}
		if !send(w, rc, ev, i == 0) || (i+1 < len(events) && !s.sleep(r.Context(), cfg.ChunkInterval)) {
			s.stats.cut.Add(1)
			return
		}
	}
	if f.CutAfterChunks > 0 {
		s.cut(w)
		return
	}
	if _, err := io.WriteString(w, "data: [DONE]\n\n"); err != nil || rc.Flush() != nil {
		s.stats.cut.Add(1)
		return
	}
	if !f.BadJSON && f.StreamError == "" {
		s.stats.serve(req.key, rep.served())
	}
}

// send writes one data event, with a keep-alive comment after it when
// comment is set (clients must skip comments), and flushes.
func send(w io.Writer, rc *http.ResponseController, data []byte, comment bool) bool {
	buf := make([]byte, 0, len(data)+len(keepAlive)+8)
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	if comment {
		buf = append(buf, keepAlive...)
	}
	if _, err := w.Write(buf); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// keepAliveOnly sends comments until the client goes away or the server
// closes; it never sends data.
func (s *Server) keepAliveOnly(ctx context.Context, w io.Writer, rc *http.ResponseController) {
	t := time.NewTicker(keepAliveInterval)
	defer t.Stop()
	defer s.stats.cut.Add(1)
	for {
		if _, err := io.WriteString(w, keepAlive); err != nil || rc.Flush() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.quit:
			return
		case <-t.C:
		}
	}
}

// sleep waits for d and reports false if the client went away or the
// server closed first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.quit:
	}
	return false
}

// events is the JSON of each data event of the streamed answer: per choice
// a role chunk (chat), reasoning deltas, content deltas and a finish chunk;
// then the usage chunk when asked for.
func (rep *reply) events(includeUsage bool) [][]byte {
	object := "text_completion"
	if rep.chat {
		object = "chat.completion.chunk"
	}
	var usage any // omitted unless include_usage, where OpenAI sends null
	if includeUsage {
		usage = json.RawMessage("null")
	}
	var out [][]byte
	add := func(ch []choiceJSON, u any) {
		c := rep.head(object, u)
		c.Choices = ch
		b, _ := json.Marshal(c)
		out = append(out, b)
	}
	for i, c := range rep.choices {
		if rep.chat {
			add([]choiceJSON{rep.delta(i, &deltaJSON{Role: "assistant", Content: strPtr("")})}, usage)
		}
		for _, p := range splitWords(c.reasoning, rep.deltas) {
			add([]choiceJSON{rep.delta(i, rep.reasoningDelta(p))}, usage)
		}
		for _, p := range splitWords(c.content, rep.deltas) {
			add([]choiceJSON{rep.piece(i, p, "")}, usage)
		}
		add([]choiceJSON{rep.piece(i, "", c.finish)}, usage)
	}
	if includeUsage {
		add([]choiceJSON{}, rep.usageJSON())
	}
	return out
}

// delta is a chat chunk's choice before it finishes. OpenRouter repeats
// the role in every delta, and sends a null native_finish_reason.
func (rep *reply) delta(i int, d *deltaJSON) choiceJSON {
	if rep.style == StyleOpenRouter {
		d.Role = "assistant"
		if d.Content == nil {
			d.Content = strPtr("")
		}
		return choiceJSON{Index: i, Delta: d, NativeFinishReason: json.RawMessage("null")}
	}
	return choiceJSON{Index: i, Delta: d}
}

func (rep *reply) reasoningDelta(p string) *deltaJSON {
	if rep.style == StyleDeepSeek {
		return &deltaJSON{ReasoningContent: strPtr(p)}
	}
	return &deltaJSON{Reasoning: strPtr(p)}
}

// piece is a content delta (chat) or a text chunk (completions); the final
// one is empty and carries the finish reason, and, in StyleVLLM, the
// stop_reason (only there, as vLLM sends it).
func (rep *reply) piece(i int, text, finish string) choiceJSON {
	if finish != "" {
		ch := rep.finished(i, finish)
		switch {
		case !rep.chat:
			ch.Text = strPtr(text)
		case rep.style == StyleDeepSeek:
			ch.Delta = &deltaJSON{}
		default:
			ch.Delta = &deltaJSON{Content: strPtr("")}
			if rep.style == StyleOpenRouter {
				ch.Delta.Role = "assistant"
			}
		}
		return ch
	}
	if !rep.chat {
		ch := choiceJSON{Index: i, Text: strPtr(text)}
		if rep.style == StyleOpenRouter {
			ch.NativeFinishReason = json.RawMessage("null")
		}
		return ch
	}
	return rep.delta(i, &deltaJSON{Content: strPtr(text)})
}

// splitWords cuts s at word starts into at most most pieces whose
// concatenation is s.
func splitWords(s string, most int) []string {
	if s == "" {
		return nil
	}
	var starts []int
	for i := 1; i < len(s); i++ {
		if !asciiSpace(s[i]) && asciiSpace(s[i-1]) {
			starts = append(starts, i)
		}
	}
	if m := len(starts); m > most-1 {
		picked := make([]int, 0, most-1)
		for k := 1; k < most; k++ {
			picked = append(picked, starts[k*(m+1)/most-1])
		}
		starts = picked
	}
	pieces, prev := make([]string, 0, len(starts)+1), 0
	for _, at := range starts {
		pieces = append(pieces, s[prev:at])
		prev = at
	}
	return append(pieces, s[prev:])
}
