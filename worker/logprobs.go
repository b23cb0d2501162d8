package worker

import (
	"bytes"
	"encoding/json"

	"github.com/llmbatch/llmbatch/jobs"
)

// logprobsAcc concatenates the logprobs objects of one choice's chunks.
// Every member that is an array ("content" and "refusal" in chat; "tokens",
// "token_logprobs", "top_logprobs" and "text_offset" in completions) is
// appended to; any other member keeps its first value. Members keep the
// order in which they first appeared.
type logprobsAcc struct {
	keys   []string
	values map[string]*bytes.Buffer // an array's items joined by commas, or the first value
	arrays map[string]bool
}

// add merges one chunk's logprobs; null and anything that is not an object
// add nothing.
func (l *logprobsAcc) add(raw json.RawMessage) {
	ms, err := jobs.Members(raw)
	if !present(raw) || err != nil {
		return
	}
	if l.values == nil {
		l.values, l.arrays = map[string]*bytes.Buffer{}, map[string]bool{}
	}
	for _, m := range ms {
		v := l.values[m.Key]
		if v == nil {
			v = &bytes.Buffer{}
			l.values[m.Key] = v
			l.keys = append(l.keys, m.Key)
		}
		var items []json.RawMessage
		if json.Unmarshal(raw[m.ValueStart:m.End], &items) != nil || items == nil {
			if v.Len() == 0 {
				v.Write(raw[m.ValueStart:m.End])
			}
			continue
		}
		if !l.arrays[m.Key] {
			v.Reset() // an array after a null: the null was no value
			l.arrays[m.Key] = true
		}
		for _, it := range items {
			if v.Len() > 0 {
				v.WriteByte(',')
			}
			v.Write(it)
		}
	}
}

// size estimates the length of the merged object as JSON.
func (l *logprobsAcc) size() int {
	n := 4
	for _, k := range l.keys {
		n += len(k) + 6 + l.values[k].Len()
	}
	return n
}

// json renders the merged object, or null when no chunk had logprobs.
func (l *logprobsAcc) json() json.RawMessage {
	if len(l.keys) == 0 {
		return json.RawMessage("null")
	}
	b := []byte{'{'}
	for i, k := range l.keys {
		if i > 0 {
			b = append(b, ',')
		}
		key, _ := json.Marshal(k)
		b = append(append(b, key...), ':')
		if l.arrays[k] {
			b = append(append(append(b, '['), l.values[k].Bytes()...), ']')
		} else {
			b = append(b, l.values[k].Bytes()...)
		}
	}
	return append(b, '}')
}
