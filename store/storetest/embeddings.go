package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// embedding is line n of an embeddings input, with the cache key
// "emb-<n>".
func embedding(n int) jobs.Request {
	return jobs.Request{Line: n, CustomID: fmt.Sprintf("emb-%d", n), Endpoint: jobs.EndpointEmbeddings,
		Model: "m-embed", CacheKey: fmt.Sprintf("emb-%d", n),
		Body: fmt.Appendf(nil, `{"model":"m-embed","input":["text %d","more"],"dimensions":4}`, n)}
}

// embedded is the answer to embeddings request r: the vectors in the raw
// body only, prompt tokens and no completion.
func embedded(r jobs.Request) jobs.Outcome {
	o := succeed(r)
	o.Result = &jobs.Result{RequestID: r.ID, StatusCode: 200, Model: r.Model, CreatedAt: t0, Latency: time.Second,
		Raw: fmt.Appendf(nil, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-2.5e-3,1,%d]}],`+
			`"model":"m-embed","usage":{"prompt_tokens":3,"total_tokens":3}}`, r.Line),
		Usage: jobs.Usage{Known: true, PromptTokens: 3, TotalTokens: 3}}
	return o
}

// testEmbeddings: embeddings requests are stored beside chat ones with
// their endpoint and body; their results keep the raw body (the vectors)
// byte for byte and count prompt tokens only; the cache answers an
// identical embeddings request of another job with a copy.
func testEmbeddings(t *testing.T, st jobs.Store) {
	a := mustImport(t, st, "a", []jobs.Request{chat(1), embedding(2), embedding(3)})
	claimed := mustClaim(t, st, a.ID, 3)
	mustRecord(t, st, succeed(claimed[0]), embedded(claimed[1]), embedded(claimed[2]))
	var recs []jobs.Record
	if err := st.RecordsWith(t.Context(), a.ID, jobs.RecordOptions{Bodies: true}, func(r jobs.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatalf("RecordsWith: %v", err)
	}
	for i, want := range []jobs.Request{chat(1), embedding(2), embedding(3)} {
		got := recs[i].Request
		if got.Endpoint != want.Endpoint || !bytes.Equal(got.Body, want.Body) || got.CustomID != want.CustomID {
			t.Errorf("line %d: %s %s %s, want %s %s %s", i+1, got.CustomID, got.Endpoint, got.Body, want.CustomID, want.Endpoint, want.Body)
		}
	}
	for i := 1; i < 3; i++ {
		want := embedded(claimed[i]).Result
		if got := recs[i].Result; got == nil || !bytes.Equal(got.Raw, want.Raw) || got.Usage != want.Usage || got.Content != "" {
			t.Errorf("line %d: result %+v, want the raw body %s with usage %+v", i+1, got, want.Raw, want.Usage)
		}
	}
	if u := mustStats(t, st, a.ID).Usage; u.PromptTokens != 6 || u.CompletionTokens != 0 || u.TotalTokens != 6 {
		t.Errorf("Stats usage = %+v, want 6 prompt tokens and no completion", u)
	}
	b := mustImport(t, st, "b", []jobs.Request{embedding(3), embedding(4)})
	if n := runPass(t, st, b.ID, 100); n != 1 {
		t.Fatalf("the cache pass answered %d embeddings requests, want 1", n)
	}
	got := mustRecords(t, st, b.ID)[0]
	if got.Result == nil || !bytes.Equal(got.Result.Raw, recs[2].Result.Raw) || got.Request.Endpoint != jobs.EndpointEmbeddings {
		t.Errorf("the cached answer is %+v, want a copy of %s", got.Result, recs[2].Result.Raw)
	}
}
