package jobs

import "testing"

var benchBody = []byte(`{"model":"deepseek/deepseek-v3","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"Summarise item 1 of the catalogue in one sentence, please, keeping the key facts."}],"temperature":0.7,"max_tokens":256}`)

// BenchmarkCacheKey measures the key of a typical chat body: CacheKey,
// and the path of an input reader (a Canonicalizer, no second validation),
// which every imported request takes.
func BenchmarkCacheKey(b *testing.B) {
	b.Run("CacheKey", func(b *testing.B) {
		b.SetBytes(int64(len(benchBody)))
		for i := 0; b.Loop(); i++ {
			if _, err := CacheKey(EndpointChat, benchBody, i%2); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Canonicalizer", func(b *testing.B) {
		b.SetBytes(int64(len(benchBody)))
		var c Canonicalizer
		for i := 0; b.Loop(); i++ {
			canon, err := c.ValidBody(benchBody)
			if err != nil {
				b.Fatal(err)
			}
			_ = CanonicalKey(EndpointChat, canon, i%2)
		}
	})
}
