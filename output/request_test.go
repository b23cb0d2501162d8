package output

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

func TestPromptText(t *testing.T) {
	tests := []struct {
		name string
		ep   jobs.Endpoint
		body string
		want string
		ok   bool
	}{
		{"ChatLastUser", jobs.EndpointChat, `{"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"a"},{"role":"user","content":"caf\u00e9 \"second\""}]}`, `café "second"`, true},
		{"ChatUserNotLast", jobs.EndpointChat, `{"messages":[{"role":"system","content":"s"},{"role":"user","content":"q"},{"role":"assistant","content":"prefill"}]}`, "q", true},
		{"ChatParts", jobs.EndpointChat, `{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"b"}]}]}`, "a\nb", true},
		{"ChatOnlyImage", jobs.EndpointChat, `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}`, "", false},
		{"ChatNoUser", jobs.EndpointChat, `{"messages":[{"role":"system","content":"s"}]}`, "", false},
		{"ChatNoMessages", jobs.EndpointChat, `{"model":"m"}`, "", false},
		{"ChatNullContent", jobs.EndpointChat, `{"messages":[{"role":"user","content":null}]}`, "", false},
		{"CompletionString", jobs.EndpointCompletions, `{"prompt":"Once upon"}`, "Once upon", true},
		{"CompletionListOfOne", jobs.EndpointCompletions, `{"prompt":[ "Once" ]}`, "Once", true},
		{"CompletionListOfTwo", jobs.EndpointCompletions, `{"prompt":["a","b"]}`, "", false},
		{"CompletionTokens", jobs.EndpointCompletions, `{"prompt":[1,2,3]}`, "", false},
		{"EmbeddingString", jobs.EndpointEmbeddings, `{"input":"The food was delicious"}`, "The food was delicious", true},
		{"EmbeddingTokenArrays", jobs.EndpointEmbeddings, `{"input":[[1,2],[3]]}`, "", false},
		{"NotJSON", jobs.EndpointChat, `line 3 was not JSON`, "", false},
		{"Empty", jobs.EndpointCompletions, ``, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := promptText(tt.ep, []byte(tt.body))
			if got != tt.want || ok != tt.ok {
				t.Errorf("promptText = %q, %v, want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestExportWithRequestGolden: flat and merged with the request and the
// embeddings' vectors.
func TestExportWithRequestGolden(t *testing.T) {
	recs := append(embeddingRecords(), datasetRecords()...)
	for i, r := range recs {
		// merged refuses a record's field named like its own ("status")
		meta := strings.Replace(string(r.Request.Metadata), `"status"`, `"stage"`, 1)
		recs[i].Request.Metadata = json.RawMessage(meta)
	}
	for _, f := range []Format{FormatFlat, FormatMerged} {
		t.Run(string(f), func(t *testing.T) {
			out, _ := exportWith(t, f, ExportOptions{WithRequest: true}, recs, false)
			golden(t, "export_"+string(f)+"_with_request.jsonl", out)
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(lines) != len(recs) {
				t.Fatalf("%d lines for %d records", len(lines), len(recs))
			}
			for i, line := range lines {
				var v struct {
					Request   json.RawMessage
					Prompt    *string
					Embedding []float32
				}
				if err := json.Unmarshal([]byte(line), &v); err != nil {
					t.Fatalf("line %d: %v: %s", i+1, err, line)
				}
				q := recs[i].Request
				if canonicalJSON(t, v.Request) != canonicalJSON(t, q.Body) {
					t.Errorf("line %d: request %s, want %s", i+1, v.Request, q.Body)
				}
				if p, ok := promptText(q.Endpoint, q.Body); ok != (v.Prompt != nil) || ok && p != *v.Prompt {
					t.Errorf("line %d: prompt %v, want %q", i+1, v.Prompt, p)
				}
			}
		})
	}
	out, _ := exportWith(t, FormatFlat, ExportOptions{}, recs, false)
	if strings.Contains(string(out), `"request"`) || strings.Contains(string(out), `"prompt"`) {
		t.Errorf("flat without WithRequest has the request:\n%s", out)
	}
}

func canonicalJSON(t *testing.T, raw []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestExportFlatEmbedding: the vector as a JSON array, the numbers as the
// provider spelled them, a base64 vector decoded.
func TestExportFlatEmbedding(t *testing.T) {
	out, _ := exportWith(t, FormatFlat, ExportOptions{}, embeddingRecords(), false)
	for _, want := range []string{
		`"content":null,"reasoning_content":null,"finish_reason":null,"embedding":[0.0023064255, -0.009327292,1.5e-3],"usage":{"prompt_tokens":5,`,
		`"embedding":[1,-2.5,0.1]`,
		`"finish_reason":null,"embedding":null,"usage":null,"latency_ms":null,"error":{"code":"invalid_request"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("flat export lacks %s:\n%s", want, out)
		}
	}
	chat, _ := exportWith(t, FormatFlat, ExportOptions{}, fixtureRecords(), false)
	if strings.Contains(string(chat), `"embedding"`) {
		t.Errorf("a chat request's flat line has an embedding:\n%s", chat)
	}
}

func TestExportMergedAddedNamesCollide(t *testing.T) {
	rec := datasetRecords()[0]
	rec.Request.Metadata = json.RawMessage(`{"prompt":"from the dataset"}`)
	var out strings.Builder
	x := NewExporter(FormatMerged, "j", &out, nil)
	if err := x.Write(rec); err != nil {
		t.Fatalf("without --with-request a dataset's prompt field is kept: %v", err)
	}
	x = NewExporter(FormatMerged, "j", &out, nil)
	x.SetOptions(ExportOptions{WithRequest: true})
	err := x.Write(rec)
	if want := `the record already has a field "prompt"; give the prompt another name with --prompt-field`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Write = %v, want %s", err, want)
	}
	f := DefaultMergedFields
	f.Prompt = "rendered_prompt"
	x = NewExporter(FormatMerged, "j", &out, nil)
	x.SetOptions(ExportOptions{WithRequest: true})
	x.SetMergedFields(f)
	if err := x.Write(rec); err != nil {
		t.Errorf("Write with --prompt-field = %v", err)
	}
	f.Embedding = "answer"
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), `"answer" is used twice`) {
		t.Errorf("Validate = %v, want answer used twice", err)
	}
}

func TestEmbeddingVector(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		json string // "": no vector
		err  bool
	}{
		{"Floats", embeddingRaw, `[0.0023064255, -0.009327292,1.5e-3]`, false},
		{"Base64", embeddingBase64Raw, `[1,-2.5,0.1]`, false},
		{"Base64Unpadded", `{"data":[{"embedding":"AAAAPwAAgD4"}]}`, `[0.5,0.25]`, false},
		{"Base64Escaped", `{"data":[{"embedding":"AAAAPwAAgD4\u003d"}]}`, `[0.5,0.25]`, false},
		{"Base64NaN", `{"data":[{"embedding":"AADAfwAAgH8="}]}`, `[null,null]`, false},
		{"FirstOfTwo", `{"data":[{"embedding":[1]},{"embedding":[2]}]}`, `[1]`, false},
		{"PrettyArray", "{\"data\":[{\"embedding\":[\n  1,\n  2\n]}]}", `[1,2]`, false},
		{"EmptyArray", `{"data":[{"embedding":[]}]}`, `[]`, false},
		{"NoData", `{"object":"list"}`, "", false},
		{"EmptyData", `{"data":[]}`, "", false},
		{"NullVector", `{"data":[{"embedding":null}]}`, "", false},
		{"NotAnObject", `[1,2]`, "", false},
		{"Base64Partial", `{"data":[{"embedding":"AACAPwAA"}]}`, "", true},
		{"Base64Bad", `{"data":[{"embedding":"!!!!"}]}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vec, ok := firstEmbedding([]byte(tt.raw))
			if ok != (tt.json != "" || tt.err) {
				t.Fatalf("firstEmbedding = %s, %v", vec, ok)
			}
			if !ok {
				return
			}
			var r rawAppender
			var scratch []float32
			got, err := r.appendVectorJSON(nil, vec, &scratch)
			if (err != nil) != tt.err || !tt.err && string(got) != tt.json {
				t.Errorf("appendVectorJSON = %s, %v, want %s (error %v)", got, err, tt.json, tt.err)
			}
		})
	}
}
