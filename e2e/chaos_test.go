package e2e

// The chaos test runs the real binary against a fake API that fails at
// random in every way the fake knows (429 with Retry-After, 500, 503,
// connection resets, answers slower than --timeout, streams cut mid-way,
// 200s with malformed JSON), SIGKILLs it at random moments and restarts it
// until it finishes, then checks the promise: every request has exactly one
// result or one permanent failure, nothing committed is lost, and the usage
// recorded is the usage served for the answers that were recorded.
//
// `go test` runs a short round. CHAOS_LONG=1 runs the same rounds, bigger,
// for 30 minutes (CHAOS_DURATION overrides); CHAOS_SEED replays a seed.
// RELIABILITY.md records the figures.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// chaosSize is the size of one chaos round.
type chaosSize struct {
	requests    int
	kills       int
	concurrency int
	// maxKillAfter bounds the random moment of a kill after a start.
	maxKillAfter time.Duration
}

// chaosFaults are the rates the fake injects; RELIABILITY.md lists them.
var chaosFaults = fakeapi.Faults{
	RateLimit: 0.02, RetryAfter: "1", RetryAfterMS: "40",
	ServerError: 0.04,
	Unavailable: 0.02,
	Reset:       0.03,
	Slow:        0.01, SlowBy: 3 * time.Second, // --timeout is 1s
	BadJSON:   0.03,
	CutStream: 0.10, CutAfter: 2,
}

// chaosTimeout is the run's --timeout; chaosFaults.SlowBy is well past it.
const chaosTimeout = time.Second

// chaosFigures are what a round did, for the log and RELIABILITY.md.
type chaosFigures struct {
	rounds, kills, requests, succeeded, failed int
	calls, attempts, served, servedAgain       int64
	injected                                   map[string]int64
	duplicates, losses                         int
	elapsed                                    time.Duration
}

func (f *chaosFigures) add(g chaosFigures) {
	f.rounds += g.rounds
	f.kills += g.kills
	f.requests += g.requests
	f.succeeded += g.succeeded
	f.failed += g.failed
	f.calls += g.calls
	f.attempts += g.attempts
	f.served += g.served
	f.servedAgain += g.servedAgain
	f.duplicates += g.duplicates
	f.losses += g.losses
	f.elapsed += g.elapsed
	if f.injected == nil {
		f.injected = map[string]int64{}
	}
	for k, v := range g.injected {
		f.injected[k] += v
	}
}

func (f chaosFigures) String() string {
	return fmt.Sprintf("rounds %d, kills %d, requests %d, results %d, permanent failures %d, "+
		"calls %d, attempts recorded %d, answers served %d (%d served again after a kill), "+
		"injected %v, duplicates %d, losses %d, time %s",
		f.rounds, f.kills, f.requests, f.succeeded, f.failed, f.calls, f.attempts, f.served, f.servedAgain,
		f.injected, f.duplicates, f.losses, f.elapsed.Round(time.Second))
}

func TestChaos(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED: %v", err)
		}
	}
	size := chaosSize{requests: 600, kills: 6, concurrency: 16, maxKillAfter: 1500 * time.Millisecond}
	duration := time.Duration(0) // one round
	if os.Getenv("CHAOS_LONG") != "" {
		size = chaosSize{requests: 3000, kills: 12, concurrency: 32, maxKillAfter: 10 * time.Second}
		duration = 30 * time.Minute
		if d := os.Getenv("CHAOS_DURATION"); d != "" {
			var err error
			if duration, err = time.ParseDuration(d); err != nil {
				t.Fatalf("CHAOS_DURATION: %v", err)
			}
		}
	}
	t.Logf("seed %d (CHAOS_SEED=%d replays it); %d requests and %d kills a round", seed, seed, size.requests, size.kills)
	var total chaosFigures
	start := time.Now()
	for round := 0; round == 0 || time.Since(start) < duration; round++ {
		ok := t.Run(fmt.Sprintf("Round%d", round+1), func(t *testing.T) {
			f := chaosRound(t, size, seed+uint64(round))
			t.Logf("round %d: %s", round+1, f)
			total.add(f)
		})
		if !ok {
			break
		}
	}
	t.Logf("CHAOS TOTAL (seed %d, faults %+v): %s", seed, chaosFaults, total)
}

// chaosLine is input line i: chat or completions, streamed or not,
// reasoning model or not; every 50th line is refused by the fake with a 400.
func chaosLine(i int) map[string]any {
	prompt := fmt.Sprintf("prompt-%d", i)
	if i%50 == 7 {
		prompt = fmt.Sprintf("perm-%d", i)
	}
	model := "deepseek/deepseek-v3"
	if i%5 == 0 {
		model = "deepseek/deepseek-r1"
	}
	l := map[string]any{"custom_id": fmt.Sprintf("req-%d", i), "model": model}
	if i%7 == 3 {
		l["prompt"] = prompt
	} else {
		l["messages"] = []any{map[string]any{"role": "user", "content": prompt}}
	}
	if i%3 == 0 {
		l["stream"] = true
	}
	return l
}

// chaosScript refuses the "perm-" prompts for good; everything else gets
// the random faults.
func chaosScript(c fakeapi.Call) fakeapi.Fault {
	if strings.HasPrefix(c.CustomKey, "perm-") {
		return fakeapi.Fault{Status: 400, Body: `{"error":{"message":"chaos: this prompt is refused","type":"invalid_request_error"}}`}
	}
	return fakeapi.Fault{}
}

func chaosRound(t *testing.T, size chaosSize, seed uint64) chaosFigures {
	started := time.Now()
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Faults: chaosFaults, Seed: int64(seed),
		Script: chaosScript, ChunkInterval: time.Millisecond})
	lines := make([]any, size.requests)
	for i := range lines {
		lines[i] = chaosLine(i)
	}
	file := writeLines(t, dir, "chaos.jsonl", lines...)
	db := filepath.Join(dir, "chaos.db")
	args := []string{"--db", db, "run", "--base-url", srv.URL(), "--concurrency", strconv.Itoa(size.concurrency),
		"--timeout", chaosTimeout.String(), "--retry-delay", "10ms", "--max-retry-delay", "200ms",
		"--max-attempts", "100", file}

	// Each kill lands at a random moment of the run's life, or as soon as
	// this run has been answered maxServed times, so that work is left for
	// every kill whatever the machine's speed.
	maxServed := int64(size.requests / (size.kills + 1))
	poll := max(10*time.Millisecond, time.Duration(size.requests/250)*time.Millisecond)
	committed := map[string]string{} // custom_id → content, or "failed", seen after a kill
	kills := 0
	var last *proc
	for {
		before := srv.Stats().Served
		p := startBinary(t, dir, binEnv(dir), args...)
		last = p
		if kills == size.kills {
			break
		}
		at := time.Duration(rng.Int64N(int64(size.maxKillAfter)))
		// Stats copies the per-prompt counts: poll it gently.
		pollUntil(t, 5*time.Minute, poll, fmt.Sprintf("the moment of kill %d", kills+1), func() bool {
			return p.exited() || time.Since(p.started) >= at || srv.Stats().Served-before >= maxServed
		})
		if !sigkill(p) {
			t.Fatalf("run %d ended by itself before its kill (exit %d); the round needs %d kills\nstderr:\n%s",
				kills+1, p.cmd.ProcessState.ExitCode(), size.kills, p.stderr.String())
		}
		kills++
		t.Logf("kill %d after %s: %d answers served to this run", kills, time.Since(p.started).Round(time.Millisecond), srv.Stats().Served-before)
		if _, err := os.Stat(db); err == nil {
			snapshotCommitted(t, db, committed)
		}
	}
	stopProgress := logProgress(t, srv, 30*time.Second)
	defer stopProgress()
	last.expect(exitSomeFailed, 10*time.Minute)
	t.Logf("final run: %s", time.Since(last.started).Round(time.Millisecond))
	fs := settled(t, srv)
	f := checkChaos(t, db, srv, size, kills, committed, lines)
	f.rounds, f.kills, f.requests = 1, kills, size.requests
	f.calls, f.served = fs.Calls, fs.Served
	f.injected = map[string]int64{"429": fs.Status[429], "500": fs.Status[500], "503": fs.Status[503],
		"reset": fs.Resets, "cut": fs.Cut, "malformed": fs.Malformed, "slow": fs.Canceled, "400": fs.Status[400]}
	f.elapsed = time.Since(started)
	return f
}

// logProgress logs what the fake serves every interval until stopped, so
// that a slow final run of a soak shows whether it moves.
func logProgress(t *testing.T, srv *fakeapi.Server, every time.Duration) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				s := srv.Stats()
				t.Logf("progress: %d calls, %d served, %d in flight", s.Calls, s.Served, s.InFlight)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-exited }) }
}

// pollUntil is waitUntil with a given polling interval.
func pollUntil(t *testing.T, timeout, every time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(every)
	}
}

// sigkill sends SIGKILL and reports whether the signal ended the process;
// false means it exited by itself just before.
func sigkill(p *proc) bool {
	p.t.Helper()
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
	p.checkRace()
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// snapshotCommitted adds what the database holds as finished to seen, and
// fails the test if something seen after an earlier kill changed or went.
func snapshotCommitted(t *testing.T, db string, seen map[string]string) {
	t.Helper()
	now := readFinished(t, db)
	for id, was := range seen {
		if got, ok := now[id]; !ok || got != was {
			t.Errorf("%s was committed as %q, and is now %q (present %v)", id, was, got, ok)
		}
	}
	for id, v := range now {
		seen[id] = v
	}
}

// readFinished returns custom_id → result content, or "failed", for every
// finished request of the database.
func readFinished(t *testing.T, path string) map[string]string {
	t.Helper()
	db := openDB(t, path, false)
	defer db.Close()
	rows, err := db.Query(`SELECT r.custom_id, r.status, coalesce(x.content, '') FROM requests r
		LEFT JOIN results x ON x.request_id = r.id WHERE r.status IN ('succeeded', 'failed')`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil // killed before the schema was committed
		}
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, status, content string
		if err := rows.Scan(&id, &status, &content); err != nil {
			t.Fatal(err)
		}
		if status == "failed" {
			content = "failed"
		}
		out[id] = content
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// usageOf is the token usage of one answer.
type usageOf struct{ prompt, completion, reasoning, total int64 }

func (u *usageOf) add(v usageOf, times int64) {
	u.prompt += v.prompt * times
	u.completion += v.completion * times
	u.reasoning += v.reasoning * times
	u.total += v.total * times
}

// checkChaos checks the finished round and returns its counts.
func checkChaos(t *testing.T, db string, srv *fakeapi.Server, size chaosSize, kills int,
	committed map[string]string, lines []any) chaosFigures {
	t.Helper()
	var f chaosFigures
	integrityCheck(t, db)
	flat := exportJSONL(t, db, "chaos", "flat")
	if len(flat) != size.requests {
		t.Errorf("export has %d lines for %d requests", len(flat), size.requests)
	}
	// An oracle: a fake without faults answers each body once, so the usage
	// each request should have comes from the fake's answer function, not
	// from what the chaotic fake counted.
	oracle := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	fs := settled(t, srv)
	var want, served, lost usageOf
	seen := map[string]bool{}
	for i, l := range flat[:min(len(flat), len(lines))] {
		id, _ := l["custom_id"].(string)
		if seen[id] {
			f.duplicates++
			t.Errorf("%s exported twice", id)
		}
		seen[id] = true
		in := lines[i].(map[string]any)
		if id != in["custom_id"] {
			t.Errorf("export line %d is %s, want %s (input order)", i, id, in["custom_id"])
			continue
		}
		prompt := chaosPrompt(in)
		n := fs.ServedByKey[prompt]
		if strings.HasPrefix(prompt, "perm-") {
			f.failed++
			if l["status"] != "failed" || l["error"].(map[string]any)["code"] != "invalid_request" || n != 0 {
				t.Errorf("%s: want a permanent failure never served, got %v (served %d)", id, l, n)
			}
			checkCommitted(t, committed, id, "failed")
			continue
		}
		f.succeeded++
		u := oracleUsage(t, oracle, in)
		if l["status"] != "succeeded" || l["content"] != "echo: "+prompt {
			t.Errorf("%s: want the answer to %q, got %v", id, prompt, l)
			continue
		}
		if got := flatUsage(l); got != u {
			t.Errorf("%s: recorded usage %+v, the answer served has %+v", id, got, u)
		}
		if n < 1 {
			t.Errorf("%s: a result recorded for a prompt the fake never served whole", id)
		}
		checkCommitted(t, committed, id, "echo: "+prompt)
		want.add(u, 1)
		served.add(u, n)
		lost.add(u, n-1)
		f.servedAgain += n - 1
	}
	for id := range committed {
		if !seen[id] {
			f.losses++
			t.Errorf("%s was committed before a kill and is missing from the export", id)
		}
	}
	f.losses += size.requests - len(seen)

	// Usage: status totals are the sum over the recorded results, which is
	// what the fake served minus the answers it served to runs killed
	// before they recorded them.
	st := statusJSON(t, db, "chaos")
	checkStatusUsage(t, st, fs, want, served)
	if want.reasoning == 0 || lost.total < 0 {
		t.Errorf("reasoning tokens %d, lost %+v: the round did not exercise what it should", want.reasoning, lost)
	}
	// An answer is served again only when a kill lost it before its commit:
	// the calls in flight (at most --concurrency, which scattered 429s and
	// 503s no longer lower) and the answers queued while a group commits.
	// Workers do not wait for the commit, so at zero latency, with calls
	// that take a fraction of a millisecond on a direct connection, the
	// queue reaches two or three pools' worth during one commit of the
	// race-built binary (36–50 answers a kill at --concurrency 16, where
	// net/http's slower calls left 25–33). Far more would mean outcomes
	// wait for their commit longer than they should.
	if limit := int64(kills * 4 * size.concurrency); f.servedAgain > limit {
		t.Errorf("%d answers served again, more than %d kills × 4 × %d (in flight and waiting for the commit)",
			f.servedAgain, kills, size.concurrency)
	}
	for state, want := range map[string]int{"succeeded": f.succeeded, "failed": f.failed, "pending": 0, "running": 0} {
		if got := count(t, st, state); got != want {
			t.Errorf("status: %s = %d, want %d", state, got, want)
		}
	}
	f.attempts = int64(st["attempts"].(float64))
	if got := queryInt(t, db, `SELECT count(*) FROM results`); got != f.succeeded {
		t.Errorf("%d results stored for %d succeeded requests", got, f.succeeded)
	}
	if got := queryInt(t, db, `SELECT count(*) FROM requests r
		WHERE attempts != (SELECT count(*) FROM attempts a WHERE a.request_id = r.id)`); got != 0 {
		t.Errorf("%d requests whose attempt count differs from their attempt rows", got)
	}
	if f.attempts > fs.Calls || f.attempts < int64(size.requests) {
		t.Errorf("%d attempts recorded for %d calls and %d requests", f.attempts, fs.Calls, size.requests)
	}
	t.Logf("usage recorded %+v; served %+v, of which lost to kills and asked again %+v", want, served, lost)
	return f
}

func checkCommitted(t *testing.T, committed map[string]string, id, now string) {
	t.Helper()
	if was, ok := committed[id]; ok && was != now {
		t.Errorf("%s was committed as %q and is now %q", id, was, now)
	}
}

// chaosPrompt is the prompt of an input line, which the fake uses as the
// key of its per-prompt counts.
func chaosPrompt(line map[string]any) string {
	if p, ok := line["prompt"].(string); ok {
		return p
	}
	return line["messages"].([]any)[0].(map[string]any)["content"].(string)
}

// checkStatusUsage checks that status's usage totals are the sum over the
// recorded results, want, and that the fake counted as served what its
// answers add up to, served.
func checkStatusUsage(t *testing.T, status map[string]any, fs fakeapi.Stats, want, served usageOf) {
	t.Helper()
	if got := flatUsage(status); got != want {
		t.Errorf("status usage %+v, want the sum over the recorded results %+v", got, want)
	}
	fu := fs.Usage
	if fake := (usageOf{fu.PromptTokens, fu.CompletionTokens, fu.ReasoningTokens, fu.TotalTokens}); fake != served {
		t.Errorf("the fake counted %+v served, its answers sum to %+v", fake, served)
	}
}

func flatUsage(l map[string]any) usageOf {
	u, _ := l["usage"].(map[string]any)
	num := func(k string) int64 { v, _ := u[k].(float64); return int64(v) }
	return usageOf{num("prompt_tokens"), num("completion_tokens"), num("reasoning_tokens"), num("total_tokens")}
}

// oracleUsage asks a fault-free fake for the plain answer to line's body
// and returns its usage.
func oracleUsage(t *testing.T, oracle *fakeapi.Server, line map[string]any) usageOf {
	t.Helper()
	body := map[string]any{}
	for k, v := range line {
		if k != "custom_id" && k != "stream" {
			body[k] = v
		}
	}
	path := "/chat/completions"
	if _, ok := body["prompt"]; ok {
		path = "/completions"
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, oracle.URL()+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Usage struct {
			Prompt     int64 `json:"prompt_tokens"`
			Completion int64 `json:"completion_tokens"`
			Total      int64 `json:"total_tokens"`
			Details    struct {
				Reasoning int64 `json:"reasoning_tokens"`
			} `json:"completion_tokens_details"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("oracle: status %d, %v", resp.StatusCode, err)
	}
	u := out.Usage
	return usageOf{u.Prompt, u.Completion, u.Details.Reasoning, u.Total}
}

// TestReadersDuringRun exports and asks for the status in a loop while a
// run records results, and holds one export's read transaction open for a
// while: readers never block the run (WAL), and never see a torn state:
// every export line parses, counts never go down, and one status's counts,
// usage and attempts agree with each other.
func TestReadersDuringRun(t *testing.T) {
	const n, concurrency, latency = 1200, 10, 20 * time.Millisecond
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: latency})
	file := writeLines(t, dir, "readers.jsonl", diskLines(n)...)
	db := filepath.Join(dir, "readers.db")
	run := startBinary(t, dir, binEnv(dir), "--db", db, "run", "--base-url", srv.URL(),
		"--concurrency", strconv.Itoa(concurrency), file)
	// Enough answers that the held export fills its pipe.
	waitUntil(t, time.Minute, "the first answers", func() bool { return run.exited() || srv.Stats().Served >= 150 })

	held, heldFor := holdExport(t, dir, db, srv)
	exports, statuses, lastLines, lastDone := 0, 0, 0, 0
	for !run.exited() {
		lines := exportJSONL(t, db, "readers", "flat")
		checkReadersExport(t, lines)
		if len(lines) < lastLines {
			t.Errorf("an export has %d lines after one had %d", len(lines), lastLines)
		}
		lastLines = len(lines)
		exports++
		done := checkReadersStatus(t, db)
		if done < lastDone {
			t.Errorf("status: %d succeeded after %d", done, lastDone)
		}
		lastDone = done
		statuses++
	}
	run.expect(0, time.Minute)
	elapsed := time.Since(run.started)
	checkReadersExport(t, <-held)
	ideal := time.Duration(n/concurrency) * latency
	t.Logf("run took %s (%s at best) with %d exports and %d statuses beside it; an export held open for %s",
		elapsed.Round(time.Millisecond), ideal, exports, statuses, heldFor)
	if exports < 3 {
		t.Errorf("only %d exports ran during the run", exports)
	}
	if elapsed > 4*ideal+10*time.Second {
		t.Errorf("the run took %s beside the readers; unhindered it takes about %s", elapsed, ideal)
	}
	if got := checkReadersStatus(t, db); got != n {
		t.Errorf("%d succeeded, want %d", got, n)
	}
}

// holdExport starts an export whose output nobody reads for a while, so
// that it blocks mid-way (a pipe holds 64 KiB) inside its read transaction,
// and checks that the run goes on meanwhile. The export's lines arrive on
// the channel once read.
func holdExport(t *testing.T, dir, db string, srv *fakeapi.Server) (<-chan []map[string]any, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "--db", db, "export", "--format", "flat", "readers")
	cmd.Dir, cmd.Env, cmd.Stdout = dir, binEnv(dir), w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	time.Sleep(500 * time.Millisecond) // a binary built with -race starts slowly
	before := srv.Stats().Served
	const hold = 1500 * time.Millisecond
	time.Sleep(hold)
	during := srv.Stats().Served - before
	if during < 20 {
		t.Errorf("the run was answered %d times while an export held its snapshot for %s", during, hold)
	}
	out := make(chan []map[string]any, 1)
	go func() {
		b, _ := io.ReadAll(r)
		r.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("held export: %v", err)
		}
		var lines []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Errorf("held export line %q: %v", l, err)
				continue
			}
			lines = append(lines, m)
		}
		if len(b) <= 64<<10 {
			t.Errorf("the held export wrote %d bytes, too few to fill a pipe and block", len(b))
		}
		out <- lines
	}()
	return out, fmt.Sprintf("%s, while the run was answered %d times", hold, during)
}

// readersUsage is the total_tokens of one answer of TestReadersDuringRun:
// every prompt has the same number of words.
const readersUsage = 84 + 82

// checkReadersExport checks one export taken during a run: finished
// requests only, each once, in input order, each with its own answer and
// usage.
func checkReadersExport(t *testing.T, lines []map[string]any) {
	t.Helper()
	last := -1
	for _, l := range lines {
		var i int
		if _, err := fmt.Sscanf(fmt.Sprint(l["custom_id"]), "req-%d", &i); err != nil || i <= last {
			t.Errorf("export line %v out of order after req-%d", l["custom_id"], last)
			return
		}
		last = i
		if l["status"] != "succeeded" || !strings.HasPrefix(fmt.Sprint(l["content"]), fmt.Sprintf("echo: prompt-%d ", i)) ||
			flatUsage(l).total != readersUsage {
			t.Errorf("export line %v", l)
			return
		}
	}
}

// checkReadersStatus reads one status and checks that its parts come from
// one snapshot: usage and attempts agree with the succeeded count.
func checkReadersStatus(t *testing.T, db string) int {
	t.Helper()
	st := statusJSON(t, db, "readers")
	done := count(t, st, "succeeded")
	total := int(st["usage"].(map[string]any)["total_tokens"].(float64))
	attempts := int(st["attempts"].(float64))
	if total != done*readersUsage || attempts != done {
		t.Errorf("torn status: %d succeeded, %d tokens (want %d), %d attempts", done, total, done*readersUsage, attempts)
	}
	return done
}
