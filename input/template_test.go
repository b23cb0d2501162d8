package input

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// templateDir holds the datasets, templates and golden files of these
// tests; paths stay relative so that messages in the goldens are stable.
var templateDir = filepath.Join("testdata", "template")

func tdata(name string) string { return filepath.Join(templateDir, name) }

func mustTemplate(t *testing.T, name string) *Template {
	t.Helper()
	tmpl, err := LoadTemplate(tdata(name))
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func mustParams(t *testing.T, specs ...string) []Param {
	t.Helper()
	var ps []Param
	for _, s := range specs {
		p, err := ParseParam(s)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// readDataset reads every request of a dataset, its error and fingerprint.
func readDataset(t *testing.T, path string, opts DatasetOptions) ([]jobs.Request, error, string) {
	t.Helper()
	d, err := OpenDataset(path, opts)
	if err != nil {
		t.Fatalf("OpenDataset: %v", err)
	}
	defer d.Close()
	var reqs []jobs.Request
	for {
		r, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		reqs = append(reqs, r)
	}
	return reqs, d.Err(), d.Fingerprint()
}

// describe renders requests as the golden files hold them.
func describe(reqs []jobs.Request) string {
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "line %d  %s  %s  %s\n  body:     %s\n  metadata: %s\n",
			r.Line, r.CustomID, r.Endpoint, r.Model, r.Body, r.Metadata)
	}
	return b.String()
}

// templateGolden compares got with testdata/template/NAME, or rewrites it
// with -update.
func templateGolden(t *testing.T, name, got string) {
	t.Helper()
	path := tdata(name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func TestDatasetGolden(t *testing.T) {
	tests := []struct {
		name string
		file string
		opts DatasetOptions
	}{
		{"JSONLText", "questions.jsonl", DatasetOptions{Template: mustTemplate(t, "question.tmpl"),
			Model: "deepseek/deepseek-v3", System: "You are a careful teacher.", IDField: "id",
			Params: mustParams(t, "temperature=0.7", "max_tokens=512", `stop=["\n\n","END"]`, "user=dataset-17")}},
		{"JSONLMessages", "questions.jsonl", DatasetOptions{Template: mustTemplate(t, "messages.tmpl"),
			Model: "deepseek/deepseek-r1", System: "Be brief.", Params: mustParams(t, "top_p=0.9")}},
		{"JSONLObjectCompletions", "questions.jsonl", DatasetOptions{Template: mustTemplate(t, "object.tmpl"),
			Model: "deepseek/deepseek-v3", Params: mustParams(t, "max_tokens=16", "n=2")}},
		{"CSV", "topics.csv", DatasetOptions{Template: mustTemplate(t, "topic.tmpl"),
			Model: "deepseek/deepseek-v3", Params: mustParams(t, "temperature=1.0")}},
		{"CSVWithIDField", "topics.csv", DatasetOptions{Template: mustTemplate(t, "topic.tmpl"),
			Model: "m", IDField: "topic", Endpoint: jobs.EndpointCompletions}},
		{"TextWithoutTemplate", "prompts.txt", DatasetOptions{Model: "m", System: "Answer with one word."}},
		{"TextCompletions", "prompts.txt", DatasetOptions{Model: "m", Endpoint: jobs.EndpointCompletions,
			Params: mustParams(t, "max_tokens=8")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tdata(tc.file)
			reqs, err, fp := readDataset(t, path, tc.opts)
			if err != nil {
				t.Fatalf("Err: %v", err)
			}
			for _, r := range reqs {
				if !json.Valid(r.Body) || !json.Valid(r.Metadata) {
					t.Errorf("%s: body or metadata is not valid JSON", r.CustomID)
				}
			}
			templateGolden(t, tc.name+".golden", describe(reqs))
			want, ferr := DatasetFingerprint(path, tc.opts)
			if ferr != nil || fp != want || len(fp) != 64 {
				t.Errorf("Fingerprint %q, DatasetFingerprint %q (%v): want them equal", fp, want, ferr)
			}
			again, _, _ := readDataset(t, path, tc.opts)
			if describe(again) != describe(reqs) {
				t.Error("a second read built different bodies")
			}
		})
	}
}

// TestDatasetMetadataIsTheRecord checks that a JSONL record is kept byte
// for byte (spacing, number spelling, unicode, nested objects) as metadata.
func TestDatasetMetadataIsTheRecord(t *testing.T) {
	reqs, err, _ := readDataset(t, tdata("questions.jsonl"), DatasetOptions{Template: mustTemplate(t, "question.tmpl"), Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(tdata("questions.jsonl"))
	var want []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) != "" {
			want = append(want, l)
		}
	}
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(reqs), len(want))
	}
	for i, r := range reqs {
		if string(r.Metadata) != want[i] {
			t.Errorf("metadata %d:\n got %s\nwant %s", i, r.Metadata, want[i])
		}
	}
}

func TestDatasetErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	q := mustTemplate(t, "question.tmpl")
	tests := []struct {
		name string
		path string
		opts DatasetOptions
	}{
		{"MissingField", write("missing.jsonl", `{"question":"q1","lang":"en"}`+"\n"+`{"question":"q2"}`+"\n"+`{"lang":"de"}`+"\n"),
			DatasetOptions{Template: q, Model: "m"}},
		{"MissingNestedField", tdata("questions.jsonl"),
			DatasetOptions{Template: mustParse(t, "nested.tmpl", "{{.meta.source}}: {{.question}}"), Model: "m"}},
		{"BadRecords", write("bad.jsonl", "{\"question\":\"q\",\"lang\":\"en\"}\n[1,2]\n{\"question\":\n\"\xff\"\n{\"a\":1} x\n"),
			DatasetOptions{Template: q, Model: "m"}},
		{"IDField", write("ids.jsonl", `{"id":1,"question":"a","lang":"en"}`+"\n"+`{"question":"b","lang":"en"}`+"\n"+
			`{"id":true,"question":"c","lang":"en"}`+"\n"+`{"id":"","question":"d","lang":"en"}`+"\n"+`{"id":null,"question":"e","lang":"en"}`+"\n"),
			DatasetOptions{Template: q, Model: "m", IDField: "id"}},
		{"NoModel", tdata("questions.jsonl"), DatasetOptions{Template: q}},
		{"EmptyPrompt", write("empty.jsonl", `{"question":"  ","lang":""}`+"\n"),
			DatasetOptions{Template: mustParse(t, "blank.tmpl", "{{.lang}}\n{{.question}}\n"), Model: "m"}},
		{"InvalidRenderedRequest", write("temps.jsonl", `{"t":0.5}`+"\n"+`{"t":5}`+"\n"+`{"t":"hot"}`+"\n"),
			DatasetOptions{Template: mustParse(t, "temp.tmpl", `{"messages":[{"role":"user","content":"hi"}],"temperature":{{.t}}}`), Model: "m"}},
		{"RenderedMetadata", write("meta.jsonl", `{"q":"x"}`+"\n"),
			DatasetOptions{Template: mustParse(t, "meta.tmpl", `{"prompt":{{json .q}},"metadata":{}}`), Model: "m"}},
		{"CSVRows", write("rows.csv", "topic,level\nа,b\nonly-one\n\"bad \"quote\",x\nx,y,z\nok,fine\n"),
			DatasetOptions{Template: mustParse(t, "row.tmpl", "{{.topic}}: {{.level}}"), Model: "m"}},
		{"CSVDuplicateColumn", write("dup.csv", "topic,topic\na,b\n"), DatasetOptions{Template: q, Model: "m"}},
		{"CSVEmptyColumnName", write("noname.csv", "topic,,level\na,b,c\n"), DatasetOptions{Template: q, Model: "m"}},
		{"CSVEmpty", write("empty.csv", ""), DatasetOptions{Template: q, Model: "m"}},
		{"CSVHeaderOnly", write("header.csv", "\xef\xbb\xbftopic,level\r\n"), DatasetOptions{Template: q, Model: "m"}},
		{"TextEmpty", write("empty.txt", "\n  \n\r\n"), DatasetOptions{Model: "m"}},
		{"TextBinary", write("bin.txt", "hello\nwor\x00ld\nmore\n"), DatasetOptions{Model: "m"}},
		{"TextUTF16", write("utf16.txt", "\xff\xfeh\x00i\x00\n\x00"), DatasetOptions{Model: "m"}},
		{"DuplicateSampleIDs", write("dups.jsonl", `{"id":"a","question":"1","lang":"en"}`+"\n"+`{"id":"a","question":"2","lang":"en"}`+"\n"),
			DatasetOptions{Template: q, Model: "m", IDField: "id"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reqs, err, fp := readDataset(t, tc.path, tc.opts)
			var ve *jobs.ValidationError
			if tc.name == "DuplicateSampleIDs" {
				// Duplicates are found by the store; the reader hands both out.
				if err != nil || len(reqs) != 2 {
					t.Fatalf("got %d requests, %v", len(reqs), err)
				}
				return
			}
			if !errors.As(err, &ve) {
				t.Fatalf("Err() = %v, want a *jobs.ValidationError", err)
			}
			if fp == "" {
				t.Error("no fingerprint after the end")
			}
			// Every valid record is handed out, also after an invalid one
			// (the store finds duplicates among them); no invalid one is.
			for _, r := range reqs {
				for _, e := range ve.Errors {
					if r.Line == e.Line {
						t.Errorf("request of the invalid line %d handed out", r.Line)
					}
				}
			}
			if want, ok := validAfterError[tc.name]; ok && !slices.Contains(linesOf(reqs), want) {
				t.Errorf("the valid line %d after an invalid one was not handed out (got lines %v)", want, linesOf(reqs))
			}
			templateGolden(t, "errors-"+tc.name+".golden", strings.ReplaceAll(err.Error(), dir, "TMP")+"\n")
		})
	}
}

// validAfterError names, for the cases of TestDatasetErrors with a valid
// record after an invalid one, the line of that record.
var validAfterError = map[string]int{"InvalidRenderedRequest": 3, "CSVRows": 6}

func linesOf(reqs []jobs.Request) []int {
	var out []int
	for _, r := range reqs {
		out = append(out, r.Line)
	}
	return out
}

func mustParse(t *testing.T, name, text string) *Template {
	t.Helper()
	tmpl, err := ParseTemplate(name, text)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func TestTemplateParseError(t *testing.T) {
	for name, text := range map[string]string{
		"unclosed.tmpl": "Question: {{.question",
		"nofunc.tmpl":   "line one\n{{shout .question}}",
		"noend.tmpl":    "{{if .x}}yes",
	} {
		_, err := ParseTemplate(name, text)
		if err == nil || !strings.HasPrefix(err.Error(), "--template "+name+":") {
			t.Errorf("ParseTemplate(%s) error = %v, want it to name the file and line", name, err)
		}
	}
	_, err := ParseTemplate("nofunc.tmpl", "line one\n{{shout .question}}")
	templateGolden(t, "errors-ParseTemplate.golden", err.Error()+"\n")
	if _, err := LoadTemplate(filepath.Join(t.TempDir(), "none.tmpl")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("LoadTemplate of a missing file: %v", err)
	}
}

func TestParseParam(t *testing.T) {
	for spec, want := range map[string]string{
		"temperature=0.7": `0.7`,
		"max_tokens=512":  `512`,
		`stop=["x", "y"]`: `["x","y"]`,
		"user=alice":      `"alice"`,
		`user="alice"`:    `"alice"`,
		"flag=true":       `true`,
		"note=a=b":        `"a=b"`,
		"empty=":          `""`,
		`response_format={"type": "json_object"}`: `{"type":"json_object"}`,
		"seed=12345678901234567890":               `12345678901234567890`,
		"text=<b>&</b>":                           `"<b>&</b>"`,
	} {
		p, err := ParseParam(spec)
		if err != nil || string(p.Value) != want {
			t.Errorf("ParseParam(%q) = %s, %v; want %s", spec, p.Value, err, want)
		}
	}
	for spec, want := range map[string]string{
		"temperature":        `--param "temperature": want KEY=VALUE`,
		"=1":                 `--param "=1": want KEY=VALUE`,
		"temperature=3":      `--param temperature=3: "temperature" must be a number from 0 to 2, got 3`,
		"max_tokens=lots":    `--param max_tokens=lots: "max_tokens" must be an integer, got string`,
		"model=x":            `--param model: "model" cannot be set with --param (use --model)`,
		"messages=[]":        `--param messages: "messages" cannot be set with --param (the template renders it)`,
		`stop=[1]`:           `--param stop=[1]: "stop" must be a string or an array of at most 4 strings, got number in stop[0]`,
		"custom_id=abc":      `--param custom_id: "custom_id" cannot be set with --param (use --id-field)`,
		"metadata={\"a\":1}": `--param metadata: "metadata" cannot be set with --param (the record is the metadata)`,
	} {
		if _, err := ParseParam(spec); err == nil || err.Error() != want {
			t.Errorf("ParseParam(%q) error = %v\nwant %s", spec, err, want)
		}
	}
}

func TestDatasetOptionsValidate(t *testing.T) {
	q := mustParse(t, "q.tmpl", "{{.q}}")
	for name, tc := range map[string]struct {
		path string
		opts DatasetOptions
		want string
	}{
		"JSONLWithoutTemplate": {"d.jsonl", DatasetOptions{}, "d.jsonl: a jsonl dataset needs --template to turn its records into prompts"},
		"CSVWithoutTemplate":   {"d.csv", DatasetOptions{}, "d.csv: a csv dataset needs --template to turn its records into prompts"},
		"SystemCompletions":    {"d.txt", DatasetOptions{System: "s", Endpoint: jobs.EndpointCompletions}, "--system needs --endpoint chat; a completions prompt has no system message"},
		"ParamTwice":           {"d.jsonl", DatasetOptions{Template: q, Params: mustParams(t, "n=1", "n=2")}, "--param n is given twice"},
	} {
		if err := tc.opts.Validate(tc.path); err == nil || err.Error() != tc.want {
			t.Errorf("%s: Validate = %v, want %s", name, err, tc.want)
		}
	}
	if err := (DatasetOptions{Format: FormatText}).Validate("d.jsonl"); err != nil {
		t.Errorf("text without a template: %v", err)
	}
}

// TestDatasetFingerprintChanges checks that everything that shapes the
// bodies changes the fingerprint: a changed template is a changed job.
func TestDatasetFingerprintChanges(t *testing.T) {
	path := tdata("questions.jsonl")
	base := DatasetOptions{Template: mustTemplate(t, "question.tmpl"), Model: "m", Params: mustParams(t, "n=1", "top_k=5")}
	fp := func(o DatasetOptions) string {
		t.Helper()
		s, err := DatasetFingerprint(path, o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := fp(base)
	if got := fp(DatasetOptions{Template: mustTemplate(t, "question.tmpl"), Model: "m", Params: mustParams(t, "n=1", "top_k=5"),
		Endpoint: jobs.EndpointChat}); got != want {
		t.Error("an explicit default endpoint changed the fingerprint")
	}
	changes := map[string]func(o *DatasetOptions){
		"TemplateText": func(o *DatasetOptions) { o.Template = mustParse(t, tdata("question.tmpl"), q0(t)+" ") },
		"System":       func(o *DatasetOptions) { o.System = "s" },
		"Model":        func(o *DatasetOptions) { o.Model = "m2" },
		"ParamValue":   func(o *DatasetOptions) { o.Params = mustParams(t, "n=2", "top_k=5") },
		"ParamOrder":   func(o *DatasetOptions) { o.Params = mustParams(t, "top_k=5", "n=1") },
		"Endpoint":     func(o *DatasetOptions) { o.Endpoint = jobs.EndpointCompletions },
		"IDField":      func(o *DatasetOptions) { o.IDField = "id" },
		"Format":       func(o *DatasetOptions) { o.Format = FormatText },
	}
	for name, change := range changes {
		o := base
		change(&o)
		if fp(o) == want {
			t.Errorf("%s: the fingerprint did not change", name)
		}
	}
}

func q0(t *testing.T) string {
	b, err := os.ReadFile(tdata("question.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFormatOf(t *testing.T) {
	for path, want := range map[string]RecordFormat{"a.csv": FormatCSV, "A.CSV": FormatCSV, "b.txt": FormatText,
		"c.jsonl": FormatJSONL, "d.json": FormatJSONL, "e": FormatJSONL} {
		if got := FormatOf(path); got != want {
			t.Errorf("FormatOf(%q) = %s, want %s", path, got, want)
		}
	}
	if _, err := ParseRecordFormat("xml"); err == nil || err.Error() != `unknown input format "xml" (want jsonl, csv or text)` {
		t.Errorf("ParseRecordFormat(xml) = %v", err)
	}
}
