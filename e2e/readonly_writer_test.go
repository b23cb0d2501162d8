package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// TestReadOnlyViewBesideLaterWriter: a user who may read a database but not
// write it or its directory watches a job that was closed cleanly (no -wal,
// no -shm: the read-only open falls back), and then the owner runs it. The
// watch must follow the run to its end, as it does on a writable database:
// a read-only view must never read the file as if no one could change it.
func TestReadOnlyViewBesideLaterWriter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the view as another user")
	}
	bin := binary(t)
	for _, d := range []string{filepath.Dir(bin)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	top := t.TempDir()
	dir := filepath.Join(top, "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(top), top} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 5 * time.Millisecond})
	file := writeLines(t, dir, "w.jsonl", chatLines(200)...)
	db := filepath.Join(dir, "w.db")
	if res := runCLI(t, nil, "--db", db, "import", file); res.Code != 0 {
		t.Fatalf("import: exit %d\n%s", res.Code, res.Stderr)
	}
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	watch := exec.Command(bin, "--db", db, "status", "--watch", "--json", "--interval", "50ms", "w")
	watch.Dir, watch.Env = dir, []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	watch.Stdout, watch.Stderr = &out, &errb
	watch.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- watch.Wait() }()
	t.Cleanup(func() { watch.Process.Kill(); <-done })
	time.Sleep(300 * time.Millisecond) // the watch has opened the database

	if res := runCLI(t, keyEnv(), runArgs(db, srv, "--quiet", "--concurrency", "8", file)...); res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res.Stderr)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil && !strings.Contains(errb.String(), "could be written while it is read") {
			t.Errorf("status --watch: %v\n%s", err, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("status --watch still runs 20 s after the run ended")
	}
	// The watch either followed the run to its end, or refused to read a
	// database that could change under it; it never kept an old state.
	text := out.String()
	if i := strings.LastIndex(text, `"succeeded": `); i >= 0 && !strings.HasPrefix(text[i:], `"succeeded": 200`) {
		t.Errorf("the watch's last report shows %.20s, want 200 succeeded\nstderr: %s", text[i:], errb.String())
	} else if i < 0 && !strings.Contains(errb.String(), "could be written while it is read") {
		t.Errorf("the watch printed no report and no reason:\n%s", errb.String())
	}
}
