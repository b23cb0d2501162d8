package input

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// TestDatasetHugeRecords reads records far longer than the read buffer in
// all three formats: there is no record size limit.
func TestDatasetHugeRecords(t *testing.T) {
	big := strings.Repeat("é", 300<<10) // 600 KiB of text
	q := mustParse(t, "q.tmpl", "{{.q}}")
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		file, content string
		opts          DatasetOptions
	}{
		"JSONL": {"big.jsonl", `{"q":"` + big + `"}` + "\n" + `{"q":"small"}`, DatasetOptions{Template: q, Model: "m"}},
		"CSV":   {"big.csv", "q\n\"" + big + "\"\nsmall\n", DatasetOptions{Template: q, Model: "m"}},
		"Text":  {"big.txt", big + "\nsmall", DatasetOptions{Model: "m"}},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			reqs, err, _ := readDataset(t, path, tc.opts)
			if err != nil || len(reqs) != 2 {
				t.Fatalf("got %d requests, %v", len(reqs), err)
			}
			if !bytes.Contains(reqs[0].Body, []byte(big)) || !bytes.Contains(reqs[1].Body, []byte(`"small"`)) {
				t.Error("a record was cut")
			}
		})
	}
}

// FuzzDataset checks that no input makes a record reader panic or hand out
// a request whose body or metadata is not a JSON object, in any format.
func FuzzDataset(f *testing.F) {
	for _, s := range []string{
		`{"q":"a"}` + "\n" + `{"q":1.50}`,
		"\xef\xbb\xbfq,n\r\na,1\r\n\"b,\"\"c\"\"\",2\r\n",
		"one\ntwo\r\n\n",
		"q\n\"unterminated\n",
		`{"q":{"nested":[1,2]}}` + "\n[1]\n\x00",
		"\xff\xfe",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	q := mustParseF(f, "{{.q}}")
	f.Fuzz(func(t *testing.T, content string) {
		for _, format := range []RecordFormat{FormatJSONL, FormatCSV, FormatText} {
			path := filepath.Join(dir, "in."+string(format))
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			opts := DatasetOptions{Template: q, Model: "m", Format: format}
			d, err := OpenDataset(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			for {
				r, err := d.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if _, err := jobs.Members(r.Body); err != nil {
					t.Fatalf("%s: body %q: %v", format, r.Body, err)
				}
				if _, err := jobs.Members(r.Metadata); err != nil {
					t.Fatalf("%s: metadata %q: %v", format, r.Metadata, err)
				}
			}
			var ve *jobs.ValidationError
			if err := d.Err(); err != nil && !errors.As(err, &ve) {
				t.Fatalf("%s: Err() = %v", format, err)
			}
			d.Close()
		}
	})
}

func mustParseF(f *testing.F, text string) *Template {
	tmpl, err := ParseTemplate("q.tmpl", text)
	if err != nil {
		f.Fatal(err)
	}
	return tmpl
}
