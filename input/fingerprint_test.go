package input

import (
	"os"
	"strings"
	"testing"
)

func TestFingerprintMatchesReader(t *testing.T) {
	tests := []struct {
		name    string
		content string
		opts    Options
	}{
		{"Valid", lines(ok, ok), Options{}},
		{"ValidWithDefaultModel", lines(`{"prompt":"p"}`), Options{DefaultModel: "dm"}},
		{"InvalidLines", lines(ok, `{`, ok), Options{}},
		// Reading stops at the NUL; the rest must still be hashed.
		{"BinaryStopsEarly", "\x00\n" + strings.Repeat(ok+"\n", 10000), Options{}},
		{"Empty", "", Options{DefaultModel: "dm"}},
		{"HugeLine", `{"model":"m","prompt":"` + strings.Repeat("y", 1<<20) + `"}`, Options{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeInput(t, tc.content)
			_, got, _ := readAll(t, path, tc.opts)
			want, err := Fingerprint(path, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got != want || len(got) != 64 {
				t.Errorf("Reader.Fingerprint() = %q, Fingerprint() = %q, want them equal (64 hex digits)", got, want)
			}
		})
	}
}

func TestFingerprintChanges(t *testing.T) {
	path := writeInput(t, lines(ok))
	base, err := Fingerprint(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	withModel, err := Fingerprint(path, Options{DefaultModel: "dm"})
	if err != nil {
		t.Fatal(err)
	}
	if withModel == base {
		t.Errorf("a new DefaultModel left the fingerprint at %s", base)
	}
	if err := os.WriteFile(path, []byte(lines(`{"model":"m","prompt":"q"}`)), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := Fingerprint(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if changed == base {
		t.Errorf("a changed file left the fingerprint at %s", base)
	}
}

func TestReaderFingerprintEmptyBeforeEOF(t *testing.T) {
	r, err := Open(writeInput(t, lines(ok, ok)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if got := r.Fingerprint(); got != "" {
		t.Errorf("Fingerprint() before io.EOF = %q, want \"\"", got)
	}
}
