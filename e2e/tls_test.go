package e2e

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRefusedCertificateStopsRun: a server whose certificate the client
// does not trust (httptest's is self-signed) stops the run at once, as an
// endpoint never reached: exit 1, one attempt, no attempt used up, a
// message that says what happened and what to check, and holds no key; and
// no request reaches the handler.
func TestRefusedCertificateStopsRun(t *testing.T) {
	var reached atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		http.Error(w, "unreachable", http.StatusTeapot)
	}))
	defer srv.Close()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	dir := t.TempDir()
	file := writeLines(t, dir, "tls.jsonl", chatLines(20)...)
	db := filepath.Join(dir, "t.db")

	res := runCLI(t, keyEnv(), "--db", db, "run", "--base-url", srv.URL, "--concurrency", "1", "--quiet",
		"--retry-delay", "10ms", file)
	if res.Code != exitError {
		t.Fatalf("run: exit %d, want 1\n%s", res.Code, res.Stderr)
	}
	t.Logf("%s", lastLine(res.Stderr))
	for _, want := range []string{"certificate was refused", "verification is always on", "--base-url", "SSL_CERT_FILE", "no answer from " + srv.URL + "/chat/completions", " run tls`"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, res.Stderr)
		}
	}
	if strings.Contains(res.Stderr+res.Stdout, testKey) {
		t.Errorf("the output holds the API key:\n%s", res.Stderr)
	}
	if strings.Contains(res.Stderr, "API key") {
		t.Errorf("the hint blames the API key for a certificate:\n%s", res.Stderr)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d requests reached the server through a refused certificate", n)
	}
	s := statusJSON(t, db, "tls")
	if count(t, s, "pending") != 20 || count(t, s, "failed") != 0 {
		t.Errorf("counts %v, want all 20 still pending", s["counts"])
	}
	if got := queryInt(t, db, `SELECT count(*) FROM attempts`); got != 1 {
		t.Errorf("%d attempts recorded, want 1 (the run stops on the first)", got)
	}
	if got := queryInt(t, db, `SELECT count(*) FROM attempts WHERE error_class = 'tls'`); got != 1 {
		t.Errorf("the attempt is not recorded with class tls")
	}
}
