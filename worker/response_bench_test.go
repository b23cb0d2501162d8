package worker

import (
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
)

// BenchmarkParseResponse compares parseResponse (the fast path) with
// decodeResponse (encoding/json) on the fake server's answer to a chat
// prompt of a typical size and on a DeepSeek-R1 answer with reasoning
// content and usage details.
func BenchmarkParseResponse(b *testing.B) {
	s := fakeapi.Start(b, fakeapi.Config{})
	prompt := "Summarise item 4711 of the catalogue in one sentence, please, keeping the key facts: " +
		strings.Repeat("the part number, the supplier, the price & the \"lead time\"; ", 4)
	bodies := []struct {
		name string
		body []byte
	}{
		{"FakeAPIChat", fakeBody(b, s.URL()+"/chat/completions", string(chatBody(testModel, prompt)))},
		{"DeepSeekR1", []byte(benchR1Body)},
	}
	parsers := []struct {
		name  string
		parse func([]byte) (*jobs.Result, *CallError)
	}{
		{"Scan", parseResponse},
		{"EncodingJSON", decodeResponse},
	}
	for _, body := range bodies {
		if _, ok := scanResponse(body.body); !ok {
			b.Fatalf("%s does not take the fast path", body.name)
		}
		for _, p := range parsers {
			b.Run(body.name+"/"+p.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body.body)))
				for b.Loop() {
					if _, cerr := p.parse(body.body); cerr != nil {
						b.Fatal(cerr)
					}
				}
			})
		}
	}
}

// benchR1Body is shaped like deepseek-r1's answers through ppinfra: long
// reasoning_content with escaped newlines and quotes, and usage details.
var benchR1Body = `{"id":"0195e3a1b2c34d5e6f7a8b9c0d1e2f3a","object":"chat.completion","created":1742000000,` +
	`"model":"deepseek/deepseek-r1","choices":[{"index":0,"message":{"role":"assistant","content":"` +
	strings.Repeat(`The catalogue item is a 12 mm hex bolt from \"Acme Fasteners\", priced at 0.42 € with a lead time of 3 weeks.\n\n`, 4) +
	`","reasoning_content":"` +
	strings.Repeat(`Okay, the user wants a one-sentence summary. Let me list the key facts first:\n- part number\n- supplier\n- price and \"lead time\"\nWait, should the price include VAT? Probably not.\n\n`, 8) +
	`"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":118,"completion_tokens":412,"total_tokens":530,` +
	`"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":356},` +
	`"prompt_cache_hit_tokens":64,"prompt_cache_miss_tokens":54},"system_fingerprint":""}`
