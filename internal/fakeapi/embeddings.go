package fakeapi

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"strconv"
)

// DefaultDimensions is the length of the vectors the fake answers an
// embeddings request with when it sets no "dimensions".
const DefaultDimensions = 8

// maxDimensions bounds "dimensions", so that a test's typo cannot ask for
// gigabytes.
const maxDimensions = 1 << 16

// embeddings is the deterministic answer to an embeddings request: a
// vector per input item, each a function of the item's text alone.
type embeddings struct {
	model  string
	items  []string
	dims   int
	base64 bool
	words  int // usage.prompt_tokens and total_tokens
}

// embeddingsFields are the fields of an embeddings body the fake reads
// besides model and stream.
type embeddingsFields struct {
	Input          json.RawMessage `json:"input"`
	Dimensions     *int            `json:"dimensions"`
	EncodingFormat *string         `json:"encoding_format"`
}

// parseEmbeddings reads an embeddings body, or returns the 400 to answer:
// a stream (the endpoint has none), an input of another shape or with an
// empty text, dimensions outside 1..maxDimensions, an encoding_format
// other than "float" and "base64".
func (req *request) parseEmbeddings(body []byte) *apiError {
	var f embeddingsFields
	if err := json.Unmarshal(body, &f); err != nil {
		return badRequest("", "We could not parse the JSON body of your request: "+err.Error())
	}
	if req.Stream {
		return badRequest("stream", "stream is not supported for embeddings")
	}
	t, apiErr := parseTexts("input", f.Input)
	if apiErr != nil {
		return apiErr
	}
	for _, it := range t.items {
		if it == "" {
			return badRequest("input", "input must not contain an empty string")
		}
	}
	e := &embeddings{model: req.Model, items: t.items, dims: DefaultDimensions, words: t.words}
	if f.Dimensions != nil {
		if e.dims = *f.Dimensions; e.dims < 1 || e.dims > maxDimensions {
			return badRequest("dimensions", "dimensions must be between 1 and "+strconv.Itoa(maxDimensions))
		}
	}
	if f.EncodingFormat != nil {
		switch *f.EncodingFormat {
		case "float":
		case "base64":
			e.base64 = true
		default:
			return badRequest("encoding_format", `encoding_format must be "float" or "base64"`)
		}
	}
	req.emb, req.key, req.inputs, req.promptTokens = e, t.key, t.items, t.words
	return nil
}

// Vector is the embedding the fake answers for text with dims components:
// floats in [-1, 1) drawn from a hash of the text, each exactly a float32.
// Tests compare exported vectors with it.
func Vector(text string, dims int) []float32 {
	h := fnv.New64a()
	h.Write([]byte(text))
	seed := h.Sum64()
	v := make([]float32, dims)
	for j := range v {
		x := splitmix64(seed + uint64(j)*0x9e3779b97f4a7c15)
		v[j] = float32(int64(x>>40)-1<<23) / (1 << 23)
	}
	return v
}

// embeddingJSON is one item of the answer's data; Embedding is a []float32
// or, for base64, a string.
type embeddingJSON struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

// body is the JSON of the answer, as OpenAI shapes it. With floatUsage the
// counts are written as floats (Config.FloatUsage).
func (e *embeddings) body(floatUsage bool) []byte {
	data := make([]embeddingJSON, len(e.items))
	for i, text := range e.items {
		v := Vector(text, e.dims)
		data[i] = embeddingJSON{Object: "embedding", Index: i, Embedding: v}
		if e.base64 {
			data[i].Embedding = encodeBase64(v)
		}
	}
	n := json.Number(strconv.Itoa(e.words))
	if floatUsage {
		n += ".0"
	}
	b, _ := json.Marshal(struct {
		Object string          `json:"object"`
		Data   []embeddingJSON `json:"data"`
		Model  string          `json:"model"`
		Usage  map[string]any  `json:"usage"`
	}{"list", data, e.model, map[string]any{"prompt_tokens": n, "total_tokens": n}})
	return b
}

// encodeBase64 writes v as OpenAI's base64 encoding does: the float32s
// little-endian, in standard base64.
func encodeBase64(v []float32) string {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(raw)
}

func (e *embeddings) served() Usage {
	return Usage{PromptTokens: int64(e.words), TotalTokens: int64(e.words)}
}
