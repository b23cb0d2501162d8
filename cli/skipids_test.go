package cli

// Review of --skip-invalid: the custom_ids of invalid lines.

import (
	"path/filepath"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// TestSkipInvalidNeverTakesAValidLinesID: an invalid line is kept under
// its own custom_id, or line-N when none could be read; a valid line that
// uses the same custom_id is still sent under it, and the invalid line
// moves aside. Otherwise --skip-invalid would fail a valid request as a
// "duplicate" of a line that never used its id (invalid JSON on line 1
// takes line-1), or of a line that was never going to be sent.
func TestSkipInvalidNeverTakesAValidLinesID(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	msg := func(id, content string) map[string]any {
		return map[string]any{"custom_id": id, "model": "m", "messages": []any{map[string]any{"role": "user", "content": content}}}
	}
	file := writeLines(t, dir, "ids.jsonl",
		`{"model":"m","messages":[`,     // 1: invalid JSON, no custom_id readable: line-1
		`{"custom_id":"a","model":"m"}`, // 2: invalid, custom_id a
		msg("line-1", "prompt-3"),       // 3: valid
		msg("a", "prompt-4"),            // 4: valid
		msg("a", "prompt-5"),            // 5: a real duplicate of line 4
	)
	db := filepath.Join(dir, "t.db")
	res := runCLI(t, keyEnv(), runArgs(db, srv, "--quiet", "--skip-invalid", file)...)
	if res.Code != ExitSomeFailed {
		t.Fatalf("run --skip-invalid: exit %d, want 3\n%s", res.Code, res.Stderr)
	}
	if st := settled(t, srv); st.Calls != 2 {
		t.Errorf("the fake API saw %d calls, want 2 (lines 3 and 4)\n%s", st.Calls, res.Stderr)
	}
	type row struct{ id, status, code string }
	want := []row{
		{"line-1", "failed", "invalid_input"},
		{"line-2", "failed", "invalid_input"},
		{"line-1", "succeeded", ""},
		{"a", "succeeded", ""},
		{"line-5", "failed", "invalid_input"},
	}
	lines := exportJSONL(t, db, "ids", "flat")
	if len(lines) != len(want) {
		t.Fatalf("export: %d lines, want %d", len(lines), len(want))
	}
	ids := map[string]bool{}
	for i, l := range lines {
		code := ""
		if e, ok := l["error"].(map[string]any); ok {
			code, _ = e["code"].(string)
		}
		got := row{l["custom_id"].(string), l["status"].(string), code}
		if i != 0 && i != 2 && got != want[i] {
			t.Errorf("line %d: %+v, want %+v", i+1, got, want[i])
		}
		if (i == 0 || i == 2) && (got.status != want[i].status || got.code != want[i].code) {
			t.Errorf("line %d: %+v, want status %s %s", i+1, got, want[i].status, want[i].code)
		}
		if ids[got.id] {
			t.Errorf("custom_id %s exported twice", got.id)
		}
		ids[got.id] = true
	}
	if got := lines[2]["custom_id"]; got != "line-1" {
		t.Errorf("the valid line 3 is exported as %v, want its own custom_id line-1", got)
	}
}
