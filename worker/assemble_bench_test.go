package worker

import (
	"fmt"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// BenchmarkAssemble feeds the assembler the events of a deepseek-r1 style
// stream: a role chunk, 300 reasoning deltas, 200 content deltas (some with
// escapes), a finish chunk and a usage chunk, as a provider sends them.
func BenchmarkAssemble(b *testing.B) {
	events := benchStream()
	size := 0
	for _, ev := range events {
		size += len(ev)
	}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		a := newAssembler(jobs.EndpointChat)
		for _, ev := range events {
			if err := a.Add(ev); err != nil {
				b.Fatal(err)
			}
		}
		if _, _, err := a.Result(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchStream() [][]byte {
	const head = `{"id":"0195e3a1b2c3","object":"chat.completion.chunk","created":1742000000,"model":"deepseek/deepseek-r1","choices":[{"index":0,"delta":`
	const tail = `,"logprobs":null,"finish_reason":null}]}`
	events := [][]byte{[]byte(head + `{"role":"assistant","content":null,"reasoning_content":""}` + tail)}
	for i := range 300 {
		events = append(events, fmt.Appendf(nil, `%s{"content":null,"reasoning_content":" step %d of the \"plan\""}%s`, head, i, tail))
	}
	for i := range 200 {
		events = append(events, fmt.Appendf(nil, `%s{"content":" word%d\n","reasoning_content":null}%s`, head, i, tail))
	}
	events = append(events, []byte(head+`{"content":"","reasoning_content":null},"logprobs":null,"finish_reason":"stop"}]}`))
	events = append(events, []byte(`{"id":"0195e3a1b2c3","object":"chat.completion.chunk","created":1742000000,"model":"deepseek/deepseek-r1","choices":[],`+
		`"usage":{"prompt_tokens":15,"completion_tokens":500,"total_tokens":515,"completion_tokens_details":{"reasoning_tokens":300}}}`))
	return events
}
