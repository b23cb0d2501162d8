package jobs

import (
	"math"
	"testing"
)

func TestParsePrice(t *testing.T) {
	tests := []struct {
		spec    string
		model   string
		want    Price
		wantErr bool
	}{
		{spec: "deepseek/deepseek-r1=0.55:2.19", model: "deepseek/deepseek-r1", want: Price{Input: 0.55, Output: 2.19}},
		{spec: "m=1:2:0.25", model: "m", want: Price{Input: 1, Output: 2, Cached: 0.25, HasCached: true}},
		{spec: "a=b=1:2", model: "a=b", want: Price{Input: 1, Output: 2}},
		{spec: "text-embedding-3-small=0.02", model: "text-embedding-3-small", want: Price{Input: 0.02, NoOutput: true}},
		{spec: "m=", wantErr: true},
		{spec: "m=x", wantErr: true},
		{spec: "m=-1", wantErr: true},
		{spec: "=1:2", wantErr: true},
		{spec: "m=1:x", wantErr: true},
		{spec: "m=-1:2", wantErr: true},
		{spec: "m=1:2:3:4", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			model, got, err := ParsePrice(tt.spec)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && (model != tt.model || got != tt.want) {
				t.Errorf("got %q %+v, want %q %+v", model, got, tt.model, tt.want)
			}
		})
	}
}

func TestCost(t *testing.T) {
	ps, err := ParsePrices([]byte(`{"currency":"USD","models":{"r1":{"input":1,"output":4,"cached":0.25},"v3":{"input":2,"output":8}}}`))
	if err != nil {
		t.Fatal(err)
	}
	u := Usage{Known: true, PromptTokens: 1_000_000, CachedTokens: 400_000, CompletionTokens: 500_000}
	// 600k × 1 + 400k × 0.25 + 500k × 4 = 0.6 + 0.1 + 2.0
	if got, ok := ps.Cost("r1", u); !ok || math.Abs(got-2.7) > 1e-9 {
		t.Errorf("r1 cost = %v, %v; want 2.7", got, ok)
	}
	// No cached price: cached tokens cost the input price.
	if got, ok := ps.Cost("v3", u); !ok || math.Abs(got-6.0) > 1e-9 {
		t.Errorf("v3 cost = %v, %v; want 6", got, ok)
	}
	if _, ok := ps.Cost("unpriced", u); ok {
		t.Error("a model without a price has a cost")
	}
	if _, ok := ps.Cost("r1", Usage{}); ok {
		t.Error("unknown usage has a cost")
	}
	if got := ps.FormatCost(2.7, true); got != "2.7000 USD" {
		t.Errorf("FormatCost = %q", got)
	}
	if got := ps.FormatCost(0, false); got != "unknown" {
		t.Errorf("FormatCost unknown = %q", got)
	}
	for _, bad := range []string{`{"models":{"m":{"output":1}}}`, `{"models":{"m":{"input":1,"output":-1}}}`,
		`{"models":{"m":{"input":-1}}}`, `{"models":{"m":{"input":1,"cached":-1}}}`} {
		if _, err := ParsePrices([]byte(bad)); err == nil {
			t.Errorf("ParsePrices(%s) accepted it", bad)
		}
	}
}

// TestCostOfEmbeddings: a model priced by input only (MODEL=IN, or a prices
// file without "output") costs its prompt tokens.
func TestCostOfEmbeddings(t *testing.T) {
	ps, err := ParsePrices([]byte(`{"models":{"e":{"input":0.02}}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, p, err := ParsePrice("e=0.02")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ps.ByModel["e"], p; got != want {
		t.Errorf("prices file %+v, --price %+v: want them equal", got, want)
	}
	u := Usage{Known: true, PromptTokens: 2_000_000, TotalTokens: 2_000_000}
	if got, ok := ps.Cost("e", u); !ok || math.Abs(got-0.04) > 1e-12 {
		t.Errorf("cost = %v, %v; want 0.04", got, ok)
	}
	// Output tokens of a model priced by input only have no known cost: a
	// chat model given MODEL=IN by mistake is not free.
	u.CompletionTokens, u.TotalTokens = 10, 2_000_010
	if got, ok := ps.Cost("e", u); ok {
		t.Errorf("cost of output without an output price = %v, want unknown", got)
	}
	if got, ok := (Price{Input: 1, Output: 0}).Cost(1_000_000, 0, 10); !ok || got != 1 {
		t.Errorf("an output price of 0 given: cost %v, %v; want 1, known", got, ok)
	}
}
