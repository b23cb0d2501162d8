package input

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

const emb = jobs.EndpointEmbeddings

// TestReaderEmbeddings: each shape of "input", in a bare body and in an
// OpenAI Batch line, goes to the embeddings endpoint with its body as the
// file spells it (encoding_format, dimensions and every other field
// passed through), custom_id and metadata taken off a bare body as for chat.
func TestReaderEmbeddings(t *testing.T) {
	tests := []struct {
		name    string
		content string
		model   string
		want    want
	}{
		{"BareString", `{"model":"e","input":"The food was delicious"}`, "",
			want{1, "line-1", emb, "e", `{"model":"e","input":"The food was delicious"}`, ""}},
		{"BareStrings", `{"model":"e","input":["a b","c"]}`, "",
			want{1, "line-1", emb, "e", `{"model":"e","input":["a b","c"]}`, ""}},
		{"BareTokens", `{"model":"e","input":[0,1,2e0,3.0]}`, "",
			want{1, "line-1", emb, "e", `{"model":"e","input":[0,1,2e0,3.0]}`, ""}},
		{"BareTokenArrays", `{"model":"e","input":[[1,2],[3]]}`, "",
			want{1, "line-1", emb, "e", `{"model":"e","input":[[1,2],[3]]}`, ""}},
		{"BatchLine", `{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"e","input":"x"},"metadata":{"k":1}}`, "",
			want{1, "a", emb, "e", `{"model":"e","input":"x"}`, `{"k":1}`}},
		{"BatchShortURL", `{"custom_id":"b","url":"/embeddings","body":{"input":"x","model":"e"}}`, "",
			want{1, "b", emb, "e", `{"input":"x","model":"e"}`, ""}},
		{"BatchNoURL", `{"custom_id":"c","body":{"input":["x"],"model":"e"}}`, "",
			want{1, "c", emb, "e", `{"input":["x"],"model":"e"}`, ""}},
		{"BareStripsCustomIDAndMetadata", `{"custom_id":"d","metadata":{"m":[1]},"model":"e","input":"x"}`, "",
			want{1, "d", emb, "e", `{"model":"e","input":"x"}`, `{"m":[1]}`}},
		{"DefaultModelSpliced", `{"input":"x","dimensions":8}`, "dm",
			want{1, "line-1", emb, "dm", `{"model":"dm","input":"x","dimensions":8}`, ""}},
		{"FieldsPassThrough",
			`{"model":"e","input":"x","encoding_format":"base64","dimensions":256,"user":"u-1","x_vendor":{"truncate":"END"}}`, "",
			want{1, "line-1", emb, "e",
				`{"model":"e","input":"x","encoding_format":"base64","dimensions":256,"user":"u-1","x_vendor":{"truncate":"END"}}`, ""}},
		{"FloatAndNulls", `{"model":"e","input":"x","encoding_format":"float","dimensions":1e3}` + "\n" +
			`{"model":"e","input":"y","encoding_format":null,"dimensions":null}`, "",
			want{1, "line-1", emb, "e", `{"model":"e","input":"x","encoding_format":"float","dimensions":1e3}`, ""}},
		// A chat or completions body may have an "input" of its own: the
		// main field decides, and "input" is sent unchecked.
		{"ChatWithInput", `{"model":"m","messages":` + hi + `,"input":""}`, "",
			want{1, "line-1", chat, "m", `{"model":"m","messages":` + hi + `,"input":""}`, ""}},
		{"CompletionsWithInput", `{"model":"m","prompt":"p","input":[],"stream":true}`, "",
			want{1, "line-1", compl, "m", `{"model":"m","prompt":"p","input":[],"stream":true}`, ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reqs, _, err := readAll(t, writeInput(t, tc.content), Options{DefaultModel: tc.model})
			if err != nil {
				t.Fatalf("unexpected error:\n%v", err)
			}
			if len(reqs) == 0 {
				t.Fatal("no request")
			}
			if got := summarize(reqs)[0]; got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestReaderEmbeddingsErrors: each way an embeddings line can be invalid,
// with the reason the FILE:LINE error gives.
func TestReaderEmbeddingsErrors(t *testing.T) {
	const tokensWant = `a string, an array of strings, an array of token ids or an array of token-id arrays`
	tests := []struct {
		name string
		line string
		want string
	}{
		{"InputObject", `{"model":"e","input":{}}`, `"input" must be ` + tokensWant + `, got object`},
		{"InputNull", `{"model":"e","input":null}`, `"input" must be ` + tokensWant + `, got null`},
		{"InputNumber", `{"model":"e","input":7}`, `"input" must be ` + tokensWant + `, got number`},
		{"InputEmptyString", `{"model":"e","input":""}`, `"input" must be a non-empty string, got ""`},
		{"InputEmptyArray", `{"model":"e","input":[ ]}`, `"input" must be ` + tokensWant + `, got an empty array`},
		{"InputEmptyItem", `{"model":"e","input":["a",""]}`, `"input[1]" must be a non-empty string, got ""`},
		{"InputMixedStrings", `{"model":"e","input":["a",1]}`, `"input[1]" must be a string like the items before it, got number`},
		{"InputNegativeToken", `{"model":"e","input":[1,-2]}`, `"input[1]" must be a token id (an integer of at least 0), got -2`},
		{"InputFractionToken", `{"model":"e","input":[1,2.5]}`, `"input[1]" must be a token id (an integer of at least 0), got 2.5`},
		{"InputStringToken", `{"model":"e","input":[1,"2"]}`, `"input[1]" must be a token id (an integer of at least 0), got string`},
		{"InputEmptyTokenArray", `{"model":"e","input":[[1],[]]}`, `"input[1]" must be a non-empty array of token ids, got an empty array`},
		{"InputTokenArrayThenNumber", `{"model":"e","input":[[1],2]}`, `"input[1]" must be an array of token ids like the items before it, got number`},
		{"InputBadTokenInArray", `{"model":"e","input":[[1],[0,-1]]}`, `"input[1][1]" must be a token id (an integer of at least 0), got -1`},
		{"InputObjects", `{"model":"e","input":[{"text":"a"}]}`, `"input" must be ` + tokensWant + `, got an array starting with an object`},
		{"EncodingFormatUnknown", `{"model":"e","input":"x","encoding_format":"int8"}`, `"encoding_format" must be "float" or "base64", got "int8"`},
		{"EncodingFormatNumber", `{"model":"e","input":"x","encoding_format":1}`, `"encoding_format" must be "float" or "base64", got 1`},
		{"DimensionsZero", `{"model":"e","input":"x","dimensions":0}`, `"dimensions" must be an integer of at least 1, got 0`},
		{"DimensionsNegative", `{"model":"e","input":"x","dimensions":-5}`, `"dimensions" must be an integer of at least 1, got -5`},
		{"DimensionsFraction", `{"model":"e","input":"x","dimensions":1.5}`, `"dimensions" must be an integer, got 1.5`},
		{"DimensionsString", `{"model":"e","input":"x","dimensions":"256"}`, `"dimensions" must be an integer, got string`},
		{"StreamTrue", `{"model":"e","input":"x","stream":true}`, `"stream" is not allowed in an embeddings body (embeddings are never streamed)`},
		{"StreamFalse", `{"model":"e","stream":false,"input":"x"}`, `"stream" is not allowed in an embeddings body (embeddings are never streamed)`},
		{"NoModel", `{"input":"x"}`, `no "model" (set it in the line or pass --model)`},
		{"EmptyModel", `{"model":"","input":"x"}`, `"model" must be a non-empty string, got ""`},
		{"OtherParamsStillChecked", `{"model":"e","input":"x","temperature":9}`, `"temperature" must be a number from 0 to 2, got 9`},
		{"URLEmbeddingsBodyChat", `{"custom_id":"a","url":"/v1/embeddings","body":{"model":"e","messages":[]}}`,
			`"url" is "/v1/embeddings" but the body has "messages", not "input"`},
		{"URLChatBodyEmbeddings", `{"custom_id":"a","url":"/v1/chat/completions","body":{"model":"e","input":"x"}}`,
			`"url" is "/v1/chat/completions" but the body has "input", not "messages"`},
		{"URLEmbeddingsNoInput", `{"custom_id":"a","url":"/v1/embeddings","body":{"model":"e"}}`,
			`no "messages" (chat) or "prompt" (completions)`},
		{"BatchLineStream", `{"custom_id":"a","url":"/v1/embeddings","body":{"model":"e","input":"x","stream":true}}`,
			`"stream" is not allowed in an embeddings body (embeddings are never streamed)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeInput(t, tc.line+"\n")
			reqs, _, err := readAll(t, path, Options{})
			var ve *jobs.ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) != 1 {
				t.Fatalf("Err() = %v, want one line error", err)
			}
			got, want := ve.Errors[0].Error(), path+":1: "+tc.want
			if got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if len(reqs) != 0 {
				t.Errorf("the invalid line was handed out: %+v", reqs)
			}
		})
	}
}

// TestDatasetEmbeddings: with --endpoint embeddings the rendered text is
// the input, a rendered JSON array the whole input, and a rendered object
// with "input" the body's fields.
func TestDatasetEmbeddings(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "docs.jsonl")
	if err := os.WriteFile(data, []byte(`{"id":"d1","text":"first doc","parts":["a","b"]}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tmpl string
		want string
	}{
		{"Text", "{{.text}}", `{"model":"e","input":"first doc","dimensions":64}`},
		{"Array", "{{json .parts}}", `{"model":"e","input":["a","b"],"dimensions":64}`},
		{"Object", `{"input":{{json .text}},"model":"e2","encoding_format":"base64"}`,
			`{"model":"e2","input":"first doc","dimensions":64,"encoding_format":"base64"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := DatasetOptions{Template: mustParse(t, "e.tmpl", tc.tmpl), Model: "e", IDField: "id",
				Endpoint: emb, Params: mustParams(t, "dimensions=64")}
			reqs, err, _ := readDataset(t, data, opts)
			if err != nil || len(reqs) != 1 {
				t.Fatalf("got %d requests, %v", len(reqs), err)
			}
			if got := reqs[0]; got.Endpoint != emb || string(got.Body) != tc.want || got.CustomID != "d1" {
				t.Errorf("got %s %s %s, want %s d1 %s", got.Endpoint, got.CustomID, got.Body, emb, tc.want)
			}
		})
	}
}

// TestDatasetEmbeddingsErrors: what an embeddings dataset refuses, once
// for its options and per record for what it renders.
func TestDatasetEmbeddingsErrors(t *testing.T) {
	q := mustParse(t, "q.tmpl", "{{.q}}")
	for name, tc := range map[string]struct {
		opts DatasetOptions
		want string
	}{
		"System":         {DatasetOptions{Template: q, System: "s", Endpoint: emb}, "--system needs --endpoint chat; an embeddings input has no system message"},
		"ParamInput":     {DatasetOptions{Template: q, Endpoint: emb, Params: mustParams(t, "input=x")}, `--param input: "input" cannot be set with --param (the template renders it)`},
		"ParamDimension": {DatasetOptions{Template: q, Endpoint: emb, Params: mustParams(t, "dimensions=0")}, `--param dimensions=0: "dimensions" must be an integer of at least 1, got 0`},
		"ParamStream":    {DatasetOptions{Template: q, Endpoint: emb, Params: mustParams(t, "stream=true")}, `--param stream=true: "stream" is not allowed in an embeddings body (embeddings are never streamed)`},
	} {
		if err := tc.opts.Validate("d.jsonl"); err == nil || err.Error() != tc.want {
			t.Errorf("%s: Validate = %v, want %s", name, err, tc.want)
		}
	}
	// The same --param input is a chat body's own field, sent as given.
	if err := (DatasetOptions{Template: q, Params: mustParams(t, "input=x")}).Validate("d.jsonl"); err != nil {
		t.Errorf("chat with --param input: %v", err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "e.jsonl")
	if err := os.WriteFile(data, []byte(`{"q":"x"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		tmpl, want string
	}{
		"RenderedEmptyArray":  {"[]", `"input" must be a string, an array of strings, an array of token ids or an array of token-id arrays, got an empty array`},
		"RenderedStream":      {`{"input":"x","stream":false}`, `"stream" is not allowed in an embeddings body`},
		"RenderedBadEncoding": {`{"input":"x","encoding_format":"hex"}`, `"encoding_format" must be "float" or "base64", got "hex"`},
	} {
		_, err, _ := readDataset(t, data, DatasetOptions{Template: mustParse(t, "t.tmpl", tc.tmpl), Model: "e", Endpoint: emb})
		var ve *jobs.ValidationError
		if !errors.As(err, &ve) || len(ve.Errors) != 1 {
			t.Errorf("%s: Err() = %v, want one line error", name, err)
			continue
		}
		if got := ve.Errors[0].Reason; !strings.Contains(got, "the rendered request is invalid: "+tc.want) {
			t.Errorf("%s: got %s, want it to hold %s", name, got, tc.want)
		}
	}
}
