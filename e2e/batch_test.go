package e2e

// The tests in this file send jobs through the provider's Batch API (run
// --mode batch) against the fake's files and batches endpoints, and kill
// the binary at each step of a batch's life: every request must end up
// answered exactly once, and no line paid for twice (the fake counts what
// its batches answered, per custom_id, and the test's Script counts the
// online calls).

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// fakeClock is a batch clock that runs with real time plus an offset the
// test moves forward: a batch's life (BatchDelay) is then in the test's
// hands, whatever the machine's speed.
type fakeClock struct{ off atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// onlineCalls counts, per Call.CustomKey, the calls the fake's online
// endpoints saw (Script sees batch lines too, with BatchID set).
type onlineCalls struct{ m sync.Map }

func (o *onlineCalls) add(c fakeapi.Call) {
	if c.BatchID != "" {
		return
	}
	v, _ := o.m.LoadOrStore(c.CustomKey, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (o *onlineCalls) get(key string) int {
	v, ok := o.m.Load(key)
	if !ok {
		return 0
	}
	return int(v.(*atomic.Int64).Load())
}

func (o *onlineCalls) total() int {
	n := 0
	o.m.Range(func(_, v any) bool {
		n += int(v.(*atomic.Int64).Load())
		return true
	})
	return n
}

// badAnswer is the permanent 400 the tests' Script gives a prompt that
// starts with "bad-", online and in a batch alike.
var badAnswer = fakeapi.Fault{Status: 400, Body: `{"error":{"message":"unsupported value","type":"invalid_request_error","param":"messages","code":null}}`}

// batchScript counts the online calls in calls and answers "bad-" prompts
// with badAnswer.
func batchScript(calls *onlineCalls) func(fakeapi.Call) fakeapi.Fault {
	return func(c fakeapi.Call) fakeapi.Fault {
		calls.add(c)
		if strings.HasPrefix(c.CustomKey, "bad-") {
			return badAnswer
		}
		return fakeapi.Fault{}
	}
}

// batchRunArgs is `run ... --mode batch` against srv, polling fast.
func batchRunArgs(db string, srv *fakeapi.Server, extra ...string) []string {
	return append([]string{"--db", db, "run", "--base-url", srv.URL(), "--mode", "batch", "--batch-poll", "200ms",
		"--retry-delay", "10ms", "--max-retry-delay", "50ms"}, extra...)
}

// statusBatches is the provider batches of status --json.
func statusBatches(t *testing.T, db, job string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, b := range statusJSON(t, db, job)["batches"].([]any) {
		out = append(out, b.(map[string]any))
	}
	return out
}

// allSubmitted says whether the job has n batches, each with its
// provider's batch id stored.
func allSubmitted(t *testing.T, db, job string, n int) bool {
	t.Helper()
	res := runCLI(t, nil, "--db", db, "status", "--json", job)
	if res.Code != 0 {
		return false // the run has not made the database or the job yet
	}
	var st struct{ Batches []map[string]any }
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Batches) != n {
		return false
	}
	for _, b := range st.Batches {
		if b["batch_id"] == "" || b["state"] != "submitted" {
			return false
		}
	}
	return true
}

// fakeBatch reads a batch object from the fake, as a client would.
func fakeBatch(t *testing.T, srv *fakeapi.Server, id string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL()+"/batches/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET batches/%s: %d %v", id, resp.StatusCode, err)
	}
	return b
}

// mixedLine is line i of the mixed job: two models, chat and
// completions (per 30 lines: 12 chat of model A, 7 chat of B, 6
// completions of A, 5 of B), every 7th streamed, and the prompt "p-i" or,
// for a line in bad, "bad-i".
func mixedLine(i int, bad map[int]bool) map[string]any {
	prompt := fmt.Sprintf("p-%d", i)
	if bad[i] {
		prompt = fmt.Sprintf("bad-%d", i)
	}
	line := map[string]any{"custom_id": fmt.Sprintf("r-%d", i)}
	g := i % 30
	line["model"] = "deepseek/deepseek-v3"
	if (g >= 12 && g < 19) || g >= 25 {
		line["model"] = "qwen/qwen-2.5-72b"
	}
	if g < 19 {
		line["messages"] = []any{map[string]any{"role": "user", "content": prompt}}
	} else {
		line["prompt"] = prompt
	}
	if i%7 == 3 {
		line["stream"] = true
		if i%14 == 3 {
			line["stream_options"] = map[string]any{"include_usage": true}
		}
	}
	return line
}

// answerText is the text of a succeeded line of the openai export: a chat
// message's content or a completion's text.
func answerText(l map[string]any) string {
	resp, _ := l["response"].(map[string]any)
	body, _ := resp["body"].(map[string]any)
	choices, _ := body["choices"].([]any)
	if len(choices) == 0 {
		return ""
	}
	c := choices[0].(map[string]any)
	if m, ok := c["message"].(map[string]any); ok {
		s, _ := m["content"].(string)
		return s
	}
	s, _ := c["text"].(string)
	return s
}

// TestBatchModeMustShow is the first "must show": a 3,000-line
// mixed job (two models, chat and completions, some streamed, five
// permanent 400s) in batch mode against a fake allowing 1,000 lines and
// one model per batch, failing the 2nd batch created and expiring 5 % of
// lines, SIGKILLed twice while it waits on its batches, finished with
// --online-fallback: every request exactly once with the right answer and
// usage, batches created = the minimum the limits require plus one
// resubmission, and no line answered twice.
func TestBatchModeMustShow(t *testing.T) {
	binary(t)
	const n = 3000
	bad := map[int]bool{17: true, 640: true, 1501: true, 2222: true, 2999: true}
	dir := t.TempDir()
	lines := make([]any, n)
	for i := range lines {
		lines[i] = mixedLine(i, bad)
	}
	file := writeLines(t, dir, "mixed.jsonl", lines...)
	db := filepath.Join(dir, "mixed.db")
	clk := &fakeClock{}
	calls := &onlineCalls{}
	// A batch lives 10 minutes of the fake's clock, which the test moves:
	// validation ends at 1 minute, lines are answered until 9.
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, BatchDelay: 10 * time.Minute, BatchClock: clk.Now,
		BatchMaxLines: 1000, BatchOneModel: true, BatchFailNth: 2, BatchExpireFraction: 0.05, BatchRefuseStream: true,
		Script: batchScript(calls)})
	args := batchRunArgs(db, srv, "--online-fallback", "--batch-max-requests", "1000", file)
	// The minimum the limits require: per endpoint and model, ceil(n/1000).
	const minimum = 2 + 1 + 1 + 1 // chat A 1200, chat B 700, completions A 600, completions B 500

	// Kill 1: every batch submitted, none ended (the fake's clock stands).
	start := time.Now()
	p := startBinary(t, dir, binEnv(dir), args...)
	waitUntil(t, time.Minute, "the first batches submitted", func() bool { return allSubmitted(t, db, "mixed", minimum) })
	p.kill()
	if got := srv.Stats().BatchesCreated; got != minimum {
		t.Fatalf("the first run created %d batches, want %d (one per file of at most 1,000 lines of one endpoint and model)", got, minimum)
	}

	// Kill 2: the 2nd batch failed validation and was collected (its lines
	// are back to pending, for a new batch); the others are in progress.
	clk.advance(2 * time.Minute)
	p = startBinary(t, dir, binEnv(dir), args...)
	waitUntil(t, time.Minute, "the refused batch collected", func() bool {
		for _, b := range statusBatches(t, db, "mixed") {
			if b["provider_status"] == "failed" && b["state"] == "collected" {
				return true
			}
		}
		return false
	})
	p.kill()
	refused := 0
	for _, b := range statusBatches(t, db, "mixed") {
		if b["provider_status"] == "failed" {
			refused++
			if msg, _ := b["message"].(string); !strings.Contains(msg, "invalid_file") {
				t.Errorf("the refused batch's message %q does not give the provider's error", msg)
			}
		}
	}
	if refused != 1 {
		t.Errorf("%d batches failed validation, want 1", refused)
	}

	// The last run resubmits the refused lines, and once every batch has
	// ended, sends what they left (the expired lines) online.
	p = startBinary(t, dir, binEnv(dir), args...)
	waitUntil(t, time.Minute, "the resubmission", func() bool { return srv.Stats().BatchesCreated == minimum+1 })
	clk.advance(30 * time.Minute)
	p.expect(exitSomeFailed, 2*time.Minute)
	t.Logf("the three runs took %s", time.Since(start).Round(time.Millisecond))

	st := statusJSON(t, db, "mixed")
	if count(t, st, "succeeded") != n-len(bad) || count(t, st, "failed") != len(bad) ||
		count(t, st, "pending") != 0 || count(t, st, "running") != 0 || st["in_batches"].(float64) != 0 {
		t.Errorf("counts %v, in_batches %v; want %d succeeded and %d failed", st["counts"], st["in_batches"], n-len(bad), len(bad))
	}
	stats := srv.Stats()
	if stats.BatchesCreated != minimum+1 {
		t.Errorf("%d batches created, want %d: the minimum %d plus one resubmission", stats.BatchesCreated, minimum+1, minimum)
	}
	if d := stats.BatchDuplicates(); len(d) > 0 {
		t.Errorf("batches answered %d lines twice, e.g. %v", len(d), d[:min(5, len(d))])
	}
	checkMustShowExport(t, db, n, bad)
	expired := checkOnce(t, srv, calls, n, bad)
	if expired == 0 {
		t.Error("no line was sent online: the fallback was not exercised")
	}
	if got := int64(calls.total()); got != int64(expired) {
		t.Errorf("%d online calls, want %d (one per line the batches left)", got, expired)
	}
	// The attempts ledger: one batch attempt per line (answered, or
	// expired), one online attempt per line the batches left.
	if got := queryInt(t, db, `SELECT count(*) FROM attempts WHERE provider_batch IS NOT NULL`); got != n {
		t.Errorf("%d batch attempts, want %d: one per line, the refused batch's none", got, n)
	}
	if got := queryInt(t, db, `SELECT count(*) FROM attempts WHERE provider_batch IS NULL`); got != expired {
		t.Errorf("%d online attempts, want %d", got, expired)
	}
	if usage := st["usage"].(map[string]any); usage["total_tokens"].(float64) != float64(6*(n-len(bad))) {
		t.Errorf("usage %v, want %d tokens (6 per answer, each counted once)", usage, 6*(n-len(bad)))
	}
	t.Logf("%d batches, %d lines answered by batches, %d online", stats.BatchesCreated, stats.BatchLines, expired)
}

// checkMustShowExport checks the openai export of the mixed job: one line
// per request, each custom_id once, the answer the fake gives the prompt
// with its usage, and the five 400s failed as invalid_request.
func checkMustShowExport(t *testing.T, db string, n int, bad map[int]bool) {
	t.Helper()
	out := exportJSONL(t, db, "mixed", "openai")
	if len(out) != n {
		t.Errorf("the export has %d lines, want %d", len(out), n)
	}
	seen := map[string]bool{}
	for _, l := range out {
		id, _ := l["custom_id"].(string)
		if seen[id] {
			t.Errorf("%s is exported twice", id)
		}
		seen[id] = true
		var i int
		fmt.Sscanf(id, "r-%d", &i)
		resp, _ := l["response"].(map[string]any)
		if bad[i] {
			if resp == nil || resp["status_code"] != 400.0 {
				t.Errorf("%s: response %v, want the 400", id, resp)
			}
			continue
		}
		body, _ := resp["body"].(map[string]any)
		usage, _ := body["usage"].(map[string]any)
		if want := fmt.Sprintf("echo: p-%d", i); answerText(l) != want || resp["status_code"] != 200.0 ||
			usage["prompt_tokens"] != 4.0 || usage["completion_tokens"] != 2.0 {
			t.Errorf("%s: answer %q, status %v, usage %v; want %q, 200, 4 prompt and 2 completion tokens",
				id, answerText(l), resp["status_code"], usage, want)
		}
	}
	for _, l := range exportJSONL(t, db, "mixed", "flat") {
		var i int
		fmt.Sscanf(l["custom_id"].(string), "r-%d", &i)
		if !bad[i] {
			continue
		}
		if e, _ := l["error"].(map[string]any); l["status"] != "failed" || e["code"] != "invalid_request" {
			t.Errorf("%s: status %v, error %v; want failed, invalid_request", l["custom_id"], l["status"], e)
		}
	}
}

// checkOnce checks that each line was answered once in all: by a batch or
// online, never both, never twice; it returns how many went online.
func checkOnce(t *testing.T, srv *fakeapi.Server, calls *onlineCalls, n int, bad map[int]bool) int {
	t.Helper()
	stats := settled(t, srv)
	byBatch := stats.BatchAnswers()
	online := 0
	for i := range n {
		id, key := fmt.Sprintf("r-%d", i), fmt.Sprintf("p-%d", i)
		if bad[i] {
			key = fmt.Sprintf("bad-%d", i)
		}
		b, o := byBatch[id], calls.get(key)
		if b+o != 1 {
			t.Errorf("%s: answered %d times by batches and %d online, want once in all", id, b, o)
		}
		if !bad[i] && stats.ServedByKey[key] != 1 {
			t.Errorf("%s: served %d times, want once", id, stats.ServedByKey[key])
		}
		online += o
	}
	return online
}

// stall is a Config.BatchStall that blocks the first call at one step
// until released.
type stall struct {
	step    string
	hit     atomic.Bool
	reached chan string
	release chan struct{}
}

func newStall(t *testing.T, step string) *stall {
	s := &stall{step: step, reached: make(chan string, 1), release: make(chan struct{})}
	t.Cleanup(s.free) // before the server's Close, registered earlier
	return s
}

func (s *stall) fn(step, id string) {
	if step != s.step || !s.hit.CompareAndSwap(false, true) {
		return
	}
	s.reached <- id
	<-s.release
}

var freeMu sync.Mutex

func (s *stall) free() {
	freeMu.Lock()
	defer freeMu.Unlock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
}

// TestBatchKilledAtEachStep kills the binary while the fake holds back its
// answer at each step of a batch's life (the file stored, the batch
// created, the output file half sent, the output half recorded), then runs
// the job again: it re-attaches to what the killed run made, creates no
// second file or batch, and records every line once.
func TestBatchKilledAtEachStep(t *testing.T) {
	binary(t)
	tests := []struct {
		name, step string
		n          int
		// killed is waited for, once the fake holds the call back, before
		// the kill.
		killed func(t *testing.T, db string) bool
	}{
		{"AfterUpload", "upload", 20, nil},
		{"AfterCreate", "create", 20, nil},
		{"DuringDownload", "download", 20, nil},
		{"DuringRecording", "download", 3000, func(t *testing.T, db string) bool {
			return count(t, statusJSON(t, db, "steps"), "succeeded") >= 256
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st := newStall(t, tt.step)
			srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, BatchDelay: 300 * time.Millisecond, BatchStall: st.fn})
			file := writeLines(t, dir, "steps.jsonl", chatLines(tt.n)...)
			db := filepath.Join(dir, "steps.db")
			p := startBinary(t, dir, binEnv(dir), batchRunArgs(db, srv, file)...)
			select {
			case <-st.reached:
			case <-time.After(time.Minute):
				t.Fatalf("the run never reached %s\n%s", tt.step, p.stderr.String())
			}
			if tt.killed != nil {
				waitUntil(t, time.Minute, "part of the output recorded", func() bool { return tt.killed(t, db) })
				if got := count(t, statusJSON(t, db, "steps"), "succeeded"); got == tt.n {
					t.Fatalf("all %d recorded before the kill: the kill is not during recording", got)
				}
			}
			p.kill()
			st.free()
			res := runBinary(t, dir, binEnv(dir), "--db", db, "run", "steps", "--mode", "batch", "--batch-poll", "200ms")
			if res.Code != 0 {
				t.Fatalf("run steps --mode batch after the kill: exit %d\n%s", res.Code, res.Stderr)
			}
			stats := settled(t, srv)
			if stats.FilesUploaded != 1 || stats.BatchesCreated != 1 {
				t.Errorf("%d files uploaded and %d batches created, want 1 and 1: the rerun did not re-attach\n%s",
					stats.FilesUploaded, stats.BatchesCreated, res.Stderr)
			}
			if d := stats.BatchDuplicates(); len(d) > 0 || stats.BatchLines != int64(tt.n) {
				t.Errorf("batches answered %d lines (%d twice), want %d once each", stats.BatchLines, len(d), tt.n)
			}
			checkBatchedOnce(t, db, "steps", tt.n)
			if calledOnline(stats) != 0 {
				t.Errorf("%d online answers, want none", calledOnline(stats))
			}
		})
	}
}

// calledOnline is how many answers the fake served online: all served
// answers less those of batch lines.
func calledOnline(st fakeapi.Stats) int64 { return st.Served - st.BatchLinesOK }

// checkBatchedOnce checks that the n chat lines of job all succeeded, each
// exported once with its answer.
func checkBatchedOnce(t *testing.T, db, job string, n int) {
	t.Helper()
	st := statusJSON(t, db, job)
	if count(t, st, "succeeded") != n || st["in_batches"].(float64) != 0 {
		t.Errorf("counts %v, in_batches %v; want all %d succeeded", st["counts"], st["in_batches"], n)
	}
	out := exportJSONL(t, db, job, "openai")
	if len(out) != n {
		t.Errorf("the export has %d lines, want %d", len(out), n)
	}
	seen := map[string]bool{}
	for _, l := range out {
		id := l["custom_id"].(string)
		var i int
		fmt.Sscanf(id, "req-%d", &i)
		if seen[id] || answerText(l) != fmt.Sprintf("echo: prompt-%d", i) {
			t.Errorf("%s: twice (%v) or answer %q", id, seen[id], answerText(l))
		}
		seen[id] = true
	}
}

// TestBatchDetach: --detach submits and exits 0 with the requests in the
// provider's batches; a later `run JOB` in online mode collects them first,
// sends online only what they left, and finishes.
func TestBatchDetach(t *testing.T) {
	binary(t)
	const n = 60
	dir := t.TempDir()
	calls := &onlineCalls{}
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, BatchDelay: 500 * time.Millisecond, BatchExpireFraction: 0.1,
		Script: batchScript(calls)})
	file := writeLines(t, dir, "later.jsonl", chatLines(n)...)
	db := filepath.Join(dir, "later.db")
	res := runBinary(t, dir, binEnv(dir), batchRunArgs(db, srv, "--detach", file)...)
	if res.Code != 0 {
		t.Fatalf("run --mode batch --detach: exit %d\n%s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "still with the provider") {
		t.Errorf("the detached run does not say its requests are with the provider:\n%s", res.Stderr)
	}
	st := statusJSON(t, db, "later")
	bs := statusBatches(t, db, "later")
	if st["in_batches"].(float64) != n || count(t, st, "pending") != 0 || len(bs) != 1 || bs[0]["state"] != "submitted" {
		t.Fatalf("after --detach: in_batches %v, counts %v, batches %v; want all %d in one submitted batch",
			st["in_batches"], st["counts"], bs, n)
	}
	if last := st["last_run"].(map[string]any); last["end"] != "detached" {
		t.Errorf("last_run %v, want it ended detached", last)
	}
	id := bs[0]["batch_id"].(string)
	waitUntil(t, time.Minute, "the batch to end", func() bool {
		s := fakeBatch(t, srv, id)["status"]
		return s == "completed" || s == "expired"
	})
	res = runBinary(t, dir, binEnv(dir), "--db", db, "run", "later", "--retry-delay", "10ms")
	if res.Code != 0 {
		t.Fatalf("run later (online) after the batch ended: exit %d\n%s", res.Code, res.Stderr)
	}
	checkBatchedOnce(t, db, "later", n)
	byBatch := settled(t, srv).BatchAnswers()
	left := 0
	for i := range n {
		b, o := byBatch[fmt.Sprintf("req-%d", i)], calls.get(fmt.Sprintf("prompt-%d", i))
		if b+o != 1 {
			t.Errorf("req-%d: answered %d times by the batch and %d online, want once in all", i, b, o)
		}
		left += o
	}
	if left == 0 {
		t.Error("the batch left no line: the online run after it was not exercised")
	}
	t.Logf("%d lines answered by the batch, %d online", n-left, left)
}

// TestBatchCost: the cost of a job answered through batches is the online
// cost of its usage less the batch discount (half by default), in status
// and report; a --batch-discount stored with the job changes it.
func TestBatchCost(t *testing.T) {
	binary(t)
	const n = 40
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, BatchDelay: 300 * time.Millisecond})
	file := writeLines(t, dir, "priced.jsonl", chatLines(n)...)
	db := filepath.Join(dir, "priced.db")
	price := "deepseek/deepseek-v3=1000:3000" // per million tokens
	res := runBinary(t, dir, binEnv(dir), batchRunArgs(db, srv, "--price", price, file)...)
	if res.Code != 0 {
		t.Fatalf("run --mode batch --price: exit %d\n%s", res.Code, res.Stderr)
	}
	st := statusJSON(t, db, "priced")
	if count(t, st, "succeeded") != n {
		t.Fatalf("counts %v, want all %d succeeded", st["counts"], n)
	}
	usage := st["usage"].(map[string]any)
	online := (usage["prompt_tokens"].(float64)*1000 + usage["completion_tokens"].(float64)*3000) / 1e6
	if online == 0 {
		t.Fatalf("usage %v: nothing to price", usage)
	}
	checkCost(t, db, "priced", online*0.5)
	checkReportCost(t, dir, db, "priced", online*0.5, online)

	// The discount given to a later run is stored with the job.
	res = runBinary(t, dir, binEnv(dir), "--db", db, "run", "priced", "--batch-discount", "0.25")
	if res.Code != 0 {
		t.Fatalf("run priced --batch-discount 0.25: exit %d\n%s", res.Code, res.Stderr)
	}
	checkCost(t, db, "priced", online*0.75)
	checkReportCost(t, dir, db, "priced", online*0.75, online*0.5)

	// status and report price with a discount given to them, as they do
	// with a --price given to them.
	t.Run("DiscountGiven", func(t *testing.T) {
		out := mustCLI(t, nil, "--db", db, "status", "--json", "--batch-discount", "0", "priced")
		var given map[string]any
		if err := json.Unmarshal([]byte(out), &given); err != nil {
			t.Fatal(err)
		}
		if got, _ := given["cost"].(map[string]any)["total"].(float64); math.Abs(got-online) > 1e-9 {
			t.Errorf("status --batch-discount 0: cost %v, want the online cost %v", got, online)
		}
		checkReportCost(t, dir, db, "priced", online, online*0.75, "--batch-discount", "0")
	})
}

// checkCost checks the job's total cost in status --json.
func checkCost(t *testing.T, db, job string, want float64) {
	t.Helper()
	cost := statusJSON(t, db, job)["cost"].(map[string]any)
	if got, ok := cost["total"].(float64); !ok || math.Abs(got-want) > 1e-9 {
		t.Errorf("status cost %v, want %v", cost["total"], want)
	}
}

// checkReportCost checks that the job's HTML report (report with flags)
// shows the cost want, and not notWant.
func checkReportCost(t *testing.T, dir, db, job string, want, notWant float64, flags ...string) {
	t.Helper()
	path := filepath.Join(dir, job+".html")
	mustCLI(t, nil, append(append([]string{"--db", db, "report", "-o", path}, flags...), job)...)
	html, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w, nw := fmt.Sprintf("%.4f", want), fmt.Sprintf("%.4f", notWant)
	if !strings.Contains(string(html), ">"+w) {
		t.Errorf("the report does not show the cost %s", w)
	}
	if strings.Contains(string(html), ">"+nw) {
		t.Errorf("the report shows %s, the cost at another discount", nw)
	}
}

// TestBatchCancel: cancel of a job whose batches are in progress cancels
// them at the provider, records what they answered before, and cancels
// the rest; nothing is left pending or in a batch.
func TestBatchCancel(t *testing.T) {
	binary(t)
	const n = 300
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, BatchDelay: 3 * time.Second})
	file := writeLines(t, dir, "stop.jsonl", chatLines(n)...)
	db := filepath.Join(dir, "stop.db")
	res := runBinary(t, dir, binEnv(dir), batchRunArgs(db, srv, "--detach", "--batch-max-requests", "150", file)...)
	if res.Code != 0 {
		t.Fatalf("run --mode batch --detach: exit %d\n%s", res.Code, res.Stderr)
	}
	bs := statusBatches(t, db, "stop")
	if len(bs) != 2 {
		t.Fatalf("%d batches, want 2 of 150", len(bs))
	}
	// Half way through the batches' lives, some lines are answered.
	waitUntil(t, time.Minute, "some lines answered", func() bool {
		c := fakeBatch(t, srv, bs[0]["batch_id"].(string))["request_counts"].(map[string]any)
		return c["completed"].(float64) > 30
	})
	out := mustCLI(t, keyEnv(), "--db", db, "cancel", "stop")
	if !strings.Contains(out, "provider batches are cancelled") {
		t.Errorf("cancel does not say the provider batches are cancelled:\n%s", out)
	}
	for _, b := range bs {
		if got := fakeBatch(t, srv, b["batch_id"].(string))["status"]; got != "cancelled" {
			t.Errorf("batch %v is %v at the provider, want cancelled", b["batch_id"], got)
		}
	}
	stats := settled(t, srv)
	st := statusJSON(t, db, "stop")
	ok, cancelled := count(t, st, "succeeded"), count(t, st, "cancelled")
	if int64(ok) != stats.BatchLinesOK || ok == 0 || ok+cancelled != n || count(t, st, "pending") != 0 ||
		count(t, st, "running") != 0 || st["in_batches"].(float64) != 0 {
		t.Errorf("counts %v, in_batches %v; want the %d lines the batches answered succeeded and the rest cancelled",
			st["counts"], st["in_batches"], stats.BatchLinesOK)
	}
	for _, b := range statusBatches(t, db, "stop") {
		if b["state"] != "collected" || b["provider_status"] != "cancelled" {
			t.Errorf("batch %v: state %v, provider %v; want collected, cancelled", b["id"], b["state"], b["provider_status"])
		}
	}
	if count(t, st, "succeeded") > 0 {
		checkAnswered(t, db, "stop")
	}
}

// checkAnswered checks that every succeeded line of job has its answer.
func checkAnswered(t *testing.T, db, job string) {
	t.Helper()
	for _, l := range exportJSONL(t, db, job, "openai") {
		if l["error"] != nil {
			continue
		}
		var i int
		fmt.Sscanf(l["custom_id"].(string), "req-%d", &i)
		if got := answerText(l); got != fmt.Sprintf("echo: prompt-%d", i) {
			t.Errorf("%s: answer %q", l["custom_id"], got)
		}
	}
}

// TestBatchFallbackAfterKill: a run with --online-fallback killed while it
// waits on one batch, after another expired and was collected (its
// unanswered lines back to pending), is run again with the same command:
// the lines the expired batch left go online, as the killed run would have
// sent them, not into a new batch (which could expire again, a day later).
func TestBatchFallbackAfterKill(t *testing.T) {
	binary(t)
	const n = 200
	dir := t.TempDir()
	clk := &fakeClock{}
	calls := &onlineCalls{}
	base := fakeapi.Config{Key: testKey, BatchClock: clk.Now, BatchExpireFraction: 0.1, Script: batchScript(calls)}
	// The first batch lives 1 minute of the fake's clock, the second 10:
	// the config changes once the first is created.
	first := base
	first.BatchDelay = time.Minute
	var srv *fakeapi.Server
	first.BatchStall = func(step, id string) {
		if step == "create" && id == "batch_1" {
			later := base
			later.BatchDelay = 10 * time.Minute
			srv.SetConfig(later)
		}
	}
	srv = fakeapi.Start(t, first)
	file := writeLines(t, dir, "fallback.jsonl", chatLines(n)...)
	db := filepath.Join(dir, "fallback.db")
	args := batchRunArgs(db, srv, "--online-fallback", "--batch-max-requests", "100", file)
	p := startBinary(t, dir, binEnv(dir), args...)
	waitUntil(t, time.Minute, "both batches submitted", func() bool { return allSubmitted(t, db, "fallback", 2) })
	clk.advance(2 * time.Minute)
	waitUntil(t, time.Minute, "the first batch collected", func() bool {
		return statusBatches(t, db, "fallback")[0]["state"] == "collected"
	})
	p.kill()
	left := count(t, statusJSON(t, db, "fallback"), "pending")
	if left == 0 {
		t.Fatal("the first batch expired no line: nothing to fall back on")
	}
	// Any batch made from now on ends at once.
	now := base
	now.BatchDelay = 300 * time.Millisecond
	srv.SetConfig(now)
	p = startBinary(t, dir, binEnv(dir), args...)
	clk.advance(20 * time.Minute)
	p.expect(0, time.Minute)
	stats := settled(t, srv)
	if stats.BatchesCreated != 2 {
		t.Errorf("%d batches created, want 2: the rerun put the %d lines the expired batch left into a new batch instead of sending them online\n%s",
			stats.BatchesCreated, left, p.stderr.String())
	}
	byBatch := stats.BatchAnswers()
	online := 0
	for i := range n {
		b, o := byBatch[fmt.Sprintf("req-%d", i)], calls.get(fmt.Sprintf("prompt-%d", i))
		if b+o != 1 {
			t.Errorf("req-%d: answered %d times by batches and %d online, want once in all", i, b, o)
		}
		online += o
	}
	if online < left {
		t.Errorf("%d lines answered online, want at least the %d the first batch left", online, left)
	}
	checkBatchedOnce(t, db, "fallback", n)
}
