package postgres

import (
	"slices"
	"sort"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// TestModelsInByteOrder: model names sort by byte value, as SQLite sorts
// them, even on a server whose collation is a language's. The test server
// may well be initialised with the C locale, so the columns are given an
// ICU English collation here, which orders case and punctuation otherwise.
func TestModelsInByteOrder(t *testing.T) {
	s := mustOpen(t)
	if _, err := s.pool.Exec(t.Context(), `ALTER TABLE requests ALTER COLUMN model TYPE text COLLATE "en-US-x-icu"`); err != nil {
		t.Skipf("no ICU collation on this server: %v", err)
	}
	names := []string{"b", "a/b", "Qwen", "a-b", "ab", "B", "deepseek/deepseek-r1", "deepseek-v3"}
	var in []jobs.Request
	for i, m := range names {
		r := chatLines(i+1, m, nil)[i]
		in = append(in, r)
	}
	job := mustImportLines(t, s, "models", in)
	want := slices.Clone(names)
	sort.Strings(want) // byte order
	got, err := s.Models(t.Context(), job.ID)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Models() = %q, %v; want %q", got, err, want)
	}
	reqs, err := s.Claim(t.Context(), job.ID, len(in), t0)
	if err != nil || len(reqs) != len(in) {
		t.Fatalf("Claim = %d requests, %v; want %d", len(reqs), err, len(in))
	}
	var outs []jobs.Outcome
	for _, r := range reqs {
		outs = append(outs, success(r))
	}
	if err := s.Record(t.Context(), outs); err != nil {
		t.Fatalf("Record: %v", err)
	}
	st, err := s.Stats(t.Context(), job.ID)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	var usage []string
	for _, m := range st.Models {
		usage = append(usage, m.Model)
	}
	if !slices.Equal(usage, want) {
		t.Errorf("Stats.Models = %q, want %q", usage, want)
	}
}
