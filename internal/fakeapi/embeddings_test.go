package fakeapi

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"testing"
)

// embeddingsAnswer is what a test reads of an embeddings answer.
type embeddingsAnswer struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string         `json:"model"`
	Usage map[string]int `json:"usage"`
	ID    *string        `json:"id"`
}

// TestEmbeddingsShapes: each shape of input gets one vector per item, each
// Vector of the item's text, with the words of the input as usage, and the
// same body always gets the same bytes.
func TestEmbeddingsShapes(t *testing.T) {
	s := Start(t, Config{})
	tests := []struct {
		name  string
		body  string
		texts []string
		dims  int
		words int
	}{
		{"String", `{"model":"e","input":"the food was good"}`, []string{"the food was good"}, DefaultDimensions, 4},
		{"Strings", `{"model":"e","input":["a b","c"],"dimensions":3}`, []string{"a b", "c"}, 3, 3},
		{"Tokens", `{"model":"e","input":[5,6,7]}`, []string{"5 6 7"}, DefaultDimensions, 3},
		{"TokenArrays", `{"model":"e","input":[[1,2],[3]],"dimensions":1,"encoding_format":"float"}`, []string{"1 2", "3"}, 1, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := mustPost(t, s, "/embeddings", tc.body)
			if res.status != http.StatusOK || res.header.Get("X-Request-Id") == "" {
				t.Fatalf("status %d, X-Request-Id %q: %s", res.status, res.header.Get("X-Request-Id"), res.body)
			}
			var a embeddingsAnswer
			if err := json.Unmarshal(res.body, &a); err != nil {
				t.Fatal(err)
			}
			if a.Object != "list" || a.Model != "e" || a.ID != nil || len(a.Data) != len(tc.texts) {
				t.Fatalf("answer %s: want a list of %d for model e, without an id", res.body, len(tc.texts))
			}
			for i, d := range a.Data {
				var got []float32
				if err := json.Unmarshal(d.Embedding, &got); err != nil {
					t.Fatal(err)
				}
				if want := Vector(tc.texts[i], tc.dims); d.Object != "embedding" || d.Index != i || !reflect.DeepEqual(got, want) {
					t.Errorf("item %d: %s %d %v, want an embedding at %d of %v", i, d.Object, d.Index, got, i, want)
				}
			}
			if want := map[string]int{"prompt_tokens": tc.words, "total_tokens": tc.words}; !reflect.DeepEqual(a.Usage, want) {
				t.Errorf("usage %v, want %v", a.Usage, want)
			}
			if again := mustPost(t, s, "/embeddings", tc.body); !bytes.Equal(again.body, res.body) {
				t.Errorf("the same body got another answer:\n%s\n%s", res.body, again.body)
			}
		})
	}
}

// TestEmbeddingsBase64: encoding_format base64 sends each vector as the
// base64 of its float32s, little-endian.
func TestEmbeddingsBase64(t *testing.T) {
	s := Start(t, Config{})
	res := mustPost(t, s, "/v1/embeddings", `{"model":"e","input":"hello there","encoding_format":"base64","dimensions":5}`)
	var a embeddingsAnswer
	if err := json.Unmarshal(res.body, &a); err != nil || len(a.Data) != 1 {
		t.Fatalf("answer %s: %v", res.body, err)
	}
	var enc string
	if err := json.Unmarshal(a.Data[0].Embedding, &enc); err != nil {
		t.Fatalf("embedding %s is not a string: %v", a.Data[0].Embedding, err)
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(raw) != 20 {
		t.Fatalf("base64 %q: %d bytes, %v; want 20", enc, len(raw), err)
	}
	got := make([]float32, 5)
	for i := range got {
		got[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	if want := Vector("hello there", 5); !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %v, want %v", got, want)
	}
}

// TestVector: vectors differ between texts, stay in [-1, 1) and are not
// all one value.
func TestVector(t *testing.T) {
	a, b := Vector("a", 64), Vector("b", 64)
	if reflect.DeepEqual(a, b) {
		t.Error("two texts have one vector")
	}
	distinct := map[float32]bool{}
	for _, x := range a {
		if x < -1 || x >= 1 {
			t.Errorf("component %v outside [-1, 1)", x)
		}
		distinct[x] = true
	}
	if len(distinct) < 32 {
		t.Errorf("%d distinct components of 64", len(distinct))
	}
}

func TestEmbeddingsRejects(t *testing.T) {
	s := Start(t, Config{})
	for name, body := range map[string]string{
		"Stream":         `{"model":"e","input":"x","stream":true}`,
		"NoInput":        `{"model":"e"}`,
		"NullInput":      `{"model":"e","input":null}`,
		"EmptyString":    `{"model":"e","input":""}`,
		"EmptyItem":      `{"model":"e","input":["a",""]}`,
		"EmptyArray":     `{"model":"e","input":[]}`,
		"Object":         `{"model":"e","input":{}}`,
		"ZeroDimensions": `{"model":"e","input":"x","dimensions":0}`,
		"HugeDimensions": `{"model":"e","input":"x","dimensions":70000}`,
		"Encoding":       `{"model":"e","input":"x","encoding_format":"int8"}`,
		"NotJSON":        `{"model":`,
	} {
		if res := mustPost(t, s, "/embeddings", body); res.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", name, res.status, res.body)
		}
	}
	if st := waitIdle(t, s); st.Served != 0 || st.Status[400] != 11 {
		t.Errorf("stats %+v, want 11 answered 400 and none served", st)
	}
}

// TestEmbeddingsFaultsAndStats: faults hit an embeddings call as they hit a
// chat call, and Stats counts only the answers served whole.
func TestEmbeddingsFaultsAndStats(t *testing.T) {
	s := Start(t, Config{Script: func(c Call) Fault {
		switch c.CustomKey {
		case "limited":
			if c.Attempt == 1 {
				return Fault{Status: 429}
			}
		case "broken":
			return Fault{BadJSON: true}
		case "reset":
			return Fault{Reset: true}
		}
		return Fault{}
	}})
	body := func(input string) string { return `{"model":"e","input":"` + input + `"}` }
	if res := mustPost(t, s, "/embeddings", body("limited")); res.status != 429 {
		t.Errorf("first call: %d, want 429", res.status)
	}
	if res := mustPost(t, s, "/embeddings", body("limited")); res.status != 200 {
		t.Errorf("second call: %d, want 200", res.status)
	}
	if res := mustPost(t, s, "/embeddings", body("broken")); res.status != 200 || json.Valid(res.body) {
		t.Errorf("BadJSON: %d %s, want 200 with half a body", res.status, res.body)
	}
	if _, err := post(t, s, "/embeddings", body("reset")); err == nil {
		t.Error("Reset: the call got an answer")
	}
	mustPost(t, s, "/embeddings", `{"model":"e","input":["two words","three more words"]}`)
	st := waitIdle(t, s)
	want := Usage{PromptTokens: 6, TotalTokens: 6}
	if st.Served != 2 || st.Usage != want || st.Malformed != 1 || st.Resets != 1 || st.Status[429] != 1 ||
		st.ServedByKey["limited"] != 1 || st.ServedByKey[`["two words","three more words"]`] != 1 {
		t.Errorf("stats %+v, want 2 served for %+v, one malformed, one reset, one 429", st, want)
	}
}

// TestEmbeddingsFloatUsage: Config.FloatUsage writes the counts as floats.
func TestEmbeddingsFloatUsage(t *testing.T) {
	s := Start(t, Config{FloatUsage: true})
	res := mustPost(t, s, "/embeddings", `{"model":"e","input":"a b c"}`)
	if !bytes.Contains(res.body, []byte(`"usage":{"prompt_tokens":3.0,"total_tokens":3.0}`)) {
		t.Errorf("body %s, want float counts", res.body)
	}
}
