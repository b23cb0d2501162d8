package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

func TestRunRateLimitFlags(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "p.jsonl", chatLines(2)...)
	for _, bad := range [][]string{{"--rpm", "-1"}, {"--tpm", "-5"}} {
		res := runCLI(t, keyEnv(), runArgs(filepath.Join(dir, "bad.db"), srv, append(bad, file)...)...)
		if res.Code != exitError || !strings.Contains(res.Stderr, "--rpm and --tpm") {
			t.Errorf("%v: exit %d, %q; want exit 1 naming the flags", bad, res.Code, res.Stderr)
		}
	}
}

// TestStatusShowsLiveRun runs a job paced by --rpm and reads status while
// it runs: the run's concurrency and limits appear, and go once it ends.
func TestStatusShowsLiveRun(t *testing.T) {
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	file := writeLines(t, dir, "paced.jsonl", chatLines(40)...)
	db := filepath.Join(dir, "t.db")
	// 1,200 a minute: 20 a second, so the run lasts about 2 s. The run is
	// a child process: urfave/cli's global help flag is written each time
	// an app parses, so two in-process commands at once race.
	p := startBinary(t, dir, binEnv(dir), runArgs(db, srv, "--concurrency", "4", "--rpm", "1200", "--tpm", "900000", file)...)
	var run map[string]any
	var text string
	for deadline := time.Now().Add(10 * time.Second); (run == nil || text == "") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if res := runCLI(t, nil, "--db", db, "status", "--json", "paced"); res.Code == 0 && run == nil {
			var st struct{ Run map[string]any }
			if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
				t.Fatalf("status json: %v\n%s", err, res.Stdout)
			}
			run = st.Run
		}
		if res := runCLI(t, nil, "--db", db, "status", "paced"); res.Code == 0 && strings.Contains(res.Stdout, "\nrun ") {
			text = res.Stdout
		}
	}
	if run == nil || text == "" {
		t.Fatalf("status never showed the live run (json %v, text %q)", run, text)
	}
	if run["max_concurrency"] != 4.0 || run["rpm"] != 1200.0 || run["tpm"] != 900000.0 || run["concurrency"].(float64) < 1 {
		t.Errorf("run = %v, want concurrency up to 4, rpm 1200, tpm 900000", run)
	}
	if !strings.Contains(text, "limits     rpm 1200, tpm 900000") {
		t.Errorf("status text lacks the limits:\n%s", text)
	}
	p.expect(0, time.Minute)
	if st := statusJSON(t, db, "paced"); st["run"] != nil {
		t.Errorf("after the run: run = %v, want null", st["run"])
	}
}
