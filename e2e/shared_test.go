package e2e

// Tests of a job several `llmbatch run` processes work at once on
// PostgreSQL (issue 15, "many runners, one job"), with the real binary:
// runs SIGKILLed and restarted under the chaos fake, and a run SIGSTOPped
// long enough to lose its lease and then SIGCONTed.
//
// Each run reaches the database under an application_name of its own,
// and triggers the test installs (an observer: the store knows nothing of
// them) log every move of a request out of running with the lease it had
// and the process that made it. So the tests see, for every outcome
// recorded, that the run recording it held the request's lease and that
// the lease had not expired.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/internal/pgtest"
)

// sharedLease is the runs' --lease in these tests: short, so that what a
// lost run held comes back within the test (its heartbeat beats a sixth
// of it).
const sharedLease = 2 * time.Second

// withApp is dsn with its connections named name (application_name), which
// the audit records as the process that moved a request.
func withApp(t *testing.T, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// auditSQL logs each move of a request out of running (audit_moves: the
// lease it had, the database's time, the process) and each run that joins
// a job (audit_runners: its token, pid and process).
const auditSQL = `
CREATE TABLE audit_moves (request_id bigint NOT NULL, new_status text NOT NULL, used_attempt bool NOT NULL,
	lease_owner text, lease_until bigint, at bigint NOT NULL, recorder text NOT NULL);
CREATE TABLE audit_runners (token text NOT NULL, pid bigint NOT NULL, recorder text NOT NULL);
CREATE FUNCTION audit_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.status = 'running' AND NEW.status <> 'running' THEN
		INSERT INTO audit_moves VALUES (OLD.id, NEW.status, NEW.attempts > OLD.attempts, OLD.lease_owner,
			OLD.lease_until, llmbatch_now_ms(), current_setting('application_name'));
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER audit_move AFTER UPDATE ON requests FOR EACH ROW EXECUTE FUNCTION audit_move();
CREATE FUNCTION audit_runner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO audit_runners VALUES (NEW.token, NEW.pid, current_setting('application_name'));
	RETURN NEW;
END $$;
CREATE TRIGGER audit_runner AFTER INSERT ON job_runners FOR EACH ROW EXECUTE FUNCTION audit_runner();
`

// pgConnect connects to dsn for the test's own queries; closed at the end.
func pgConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func pgInt(t *testing.T, conn *pgx.Conn, query string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// auditMove is one row of audit_moves.
type auditMove struct {
	request     int64
	status      string
	usedAttempt bool
	owner       *string
	until       *int64
	at          int64
	recorder    string
}

// recorded says whether m is an outcome a run recorded (a result, a
// failure, or a retry that used an attempt), not a lease given back.
func (m auditMove) recorded() bool {
	return m.status == "succeeded" || m.status == "failed" || m.usedAttempt
}

// readAudit reads every move, and the process of each run token.
func readAudit(t *testing.T, conn *pgx.Conn) ([]auditMove, map[string]string) {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT request_id, new_status, used_attempt, lease_owner, lease_until,
		at, recorder FROM audit_moves ORDER BY at`)
	if err != nil {
		t.Fatal(err)
	}
	moves, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auditMove, error) {
		var m auditMove
		err := r.Scan(&m.request, &m.status, &m.usedAttempt, &m.owner, &m.until, &m.at, &m.recorder)
		return m, err
	})
	if err != nil {
		t.Fatal(err)
	}
	runners := map[string]string{}
	rows, err = conn.Query(context.Background(), `SELECT token, recorder FROM audit_runners`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var token, recorder string
		if err := rows.Scan(&token, &recorder); err != nil {
			t.Fatal(err)
		}
		runners[token] = recorder
	}
	return moves, runners
}

// checkAudit checks that every outcome was recorded by the process whose
// run held the request's lease, before that lease expired, and that each
// request was finished (succeeded or failed) once. It returns the move
// that finished each request.
func checkAudit(t *testing.T, moves []auditMove, runners map[string]string) map[int64]auditMove {
	t.Helper()
	finished := map[int64]auditMove{}
	late, foreign := 0, 0
	for _, m := range moves {
		if !m.recorded() {
			continue
		}
		switch {
		case m.owner == nil || m.until == nil || runners[*m.owner] != m.recorder:
			if foreign++; foreign <= 5 {
				t.Errorf("request %d moved to %s by %s, whose run did not hold its lease (%v)", m.request, m.status, m.recorder, deref(m.owner))
			}
		case *m.until < m.at:
			if late++; late <= 5 {
				t.Errorf("request %d moved to %s by %s %dms after its lease expired", m.request, m.status, m.recorder, m.at-*m.until)
			}
		}
		if m.status == "succeeded" || m.status == "failed" {
			if prev, twice := finished[m.request]; twice {
				t.Errorf("request %d finished twice: %s by %s, then %s by %s", m.request, prev.status, prev.recorder, m.status, m.recorder)
			}
			finished[m.request] = m
		}
	}
	if late+foreign > 0 {
		t.Errorf("%d outcomes recorded past their lease, %d by a run without it", late, foreign)
	}
	return finished
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// statusRunners are the pids of the runs status --json lists.
func statusRunners(t *testing.T, db, job string) []int {
	t.Helper()
	var pids []int
	for _, r := range statusJSON(t, db, job)["runners"].([]any) {
		pids = append(pids, int(r.(map[string]any)["pid"].(float64)))
	}
	slices.Sort(pids)
	return pids
}

func pidsOf(ps ...*proc) []int {
	var pids []int
	for _, p := range ps {
		pids = append(pids, p.pid())
	}
	slices.Sort(pids)
	return pids
}

// waitRunners waits until status lists exactly the runs ps, and checks the
// table names them too, with this host.
func waitRunners(t *testing.T, db, job string, ps ...*proc) {
	t.Helper()
	want := pidsOf(ps...)
	waitUntil(t, time.Minute, fmt.Sprintf("status to list the runs %v", want), func() bool {
		for _, p := range ps {
			if p.exited() {
				t.Fatalf("%s exited early (%s)\n%s", p.name, p.cmd.ProcessState, p.stderr.String())
			}
		}
		time.Sleep(100 * time.Millisecond)
		return slices.Equal(statusRunners(t, db, job), want)
	})
	host, _ := os.Hostname()
	table := mustCLI(t, nil, "--db", db, "status", job)
	if !strings.Contains(table, fmt.Sprintf("runners (%d live)", len(ps))) {
		t.Errorf("the status table does not list %d runs:\n%s", len(ps), table)
	}
	for _, p := range ps {
		if !strings.Contains(table, fmt.Sprintf("  %s  ", host)) || !strings.Contains(table, strconv.Itoa(p.pid())) {
			t.Errorf("the status table lacks pid %d on %s:\n%s", p.pid(), host, table)
		}
	}
}

// TestSharedChaos is the chaos test of many runners: 6,000 requests, three
// runs at --concurrency 8 against the fault-injecting fake, a random run
// SIGKILLed four times and restarted (at once, or after its lease has
// run out), until all finish. Every request has one result or one
// permanent failure, recorded once, by the run holding its lease, before
// the lease expired; the usage recorded is the usage of the answers
// recorded; and the fake saw more calls at once than one run may make.
func TestSharedChaos(t *testing.T) {
	const n, runs, concurrency, kills = 6000, 3, 8, 4
	dsn := pgtest.DSN(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED: %v", err)
		}
	}
	t.Logf("seed %d (CHAOS_SEED=%d replays the kills and the faults)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	started := time.Now()
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Faults: chaosFaults, Seed: int64(seed),
		Script: chaosScript, ChunkInterval: time.Millisecond})
	lines := make([]any, n)
	for i := range lines {
		lines[i] = chaosLine(i)
	}
	file := writeLines(t, dir, "shared.jsonl", lines...)
	mustCLI(t, nil, "--db", dsn, "import", "--job", "shared", file)
	conn := pgConnect(t, dsn)
	if _, err := conn.Exec(context.Background(), auditSQL); err != nil {
		t.Fatalf("install the audit: %v", err)
	}
	start := func(name string) *proc {
		return startBinary(t, dir, binEnv(dir), "--db", withApp(t, dsn, name), "run", "shared",
			"--base-url", srv.URL(), "--concurrency", strconv.Itoa(concurrency), "--timeout", chaosTimeout.String(),
			"--retry-delay", "10ms", "--max-retry-delay", "200ms", "--max-attempts", "100", "--lease", sharedLease.String())
	}
	slots := make([]*proc, runs)
	for i := range slots {
		slots[i] = start(fmt.Sprintf("run%d.0", i))
	}
	waitRunners(t, dsn, "shared", slots...)

	// Kill k comes at a random moment, or once the fake has served k
	// sixths of the job, and the restart after a random wait, or at that
	// mark for the next kill: whatever the machine's speed, work is left
	// for every kill and the last run.
	mark := func(k int) int64 { return int64(k * n / (kills + 2)) }
	for k := 1; k <= kills; k++ {
		since := time.Now()
		at := 300*time.Millisecond + time.Duration(rng.Int64N(int64(2*time.Second)))
		pollUntil(t, 2*time.Minute, 20*time.Millisecond, fmt.Sprintf("the moment of kill %d", k), func() bool {
			return time.Since(since) >= at || srv.Stats().Served >= mark(k)
		})
		i := rng.IntN(runs)
		st := srv.Stats()
		if !sigkill(slots[i]) {
			t.Fatalf("run %d ended by itself before kill %d (exit %d)\n%s", i, k, slots[i].cmd.ProcessState.ExitCode(), slots[i].stderr.String())
		}
		// Restarted at once, a run on this host finds the killed one's
		// process gone and takes back what it held; later than its lease,
		// the others' heartbeats have done so already.
		killed := time.Now()
		wait := time.Duration(rng.Int64N(int64(sharedLease + time.Second)))
		pollUntil(t, time.Minute, 20*time.Millisecond, fmt.Sprintf("the restart after kill %d", k), func() bool {
			return time.Since(killed) >= wait || srv.Stats().Served >= mark(k+1)
		})
		t.Logf("kill %d: run %d after %s, %d answers served to all, %d calls in flight; restarted after %s",
			k, i, killed.Sub(slots[i].started).Round(time.Millisecond), st.Served, st.InFlight, time.Since(killed).Round(time.Millisecond))
		slots[i] = start(fmt.Sprintf("run%d.%d", i, k))
	}
	for i, p := range slots {
		if code := p.wait(3 * time.Minute); code != exitSomeFailed {
			t.Errorf("run %d: exit %d, want %d (some requests fail for good)\n%s", i, code, exitSomeFailed, p.stderr.String())
		}
	}
	fs := settled(t, srv)
	t.Logf("all runs ended %s after the start; the fake: %d calls, %d answers served, at most %d calls at once",
		time.Since(started).Round(time.Millisecond), fs.Calls, fs.Served, fs.MaxInFlight)
	if fs.MaxInFlight <= concurrency {
		t.Errorf("the fake saw at most %d calls at once; one run allows %d, three should pass it", fs.MaxInFlight, concurrency)
	}
	again := checkSharedExport(t, dsn, srv, lines)
	moves, runners := readAudit(t, conn)
	finished := checkAudit(t, moves, runners)
	if len(finished) != n {
		t.Errorf("%d requests finished by a recorded outcome, want %d", len(finished), n)
	}
	// An answer is served again only when a kill lost it before its
	// commit: the request was then given back from the killed run to
	// another. Other repeats are the rare answer a timeout gave up on
	// just as it came.
	back := givenBack(moves, runners)
	ids := requestIDs(t, conn)
	var servedAgain, unexplained int64
	for id, k := range again {
		servedAgain += k
		unexplained += max(0, k-back[ids[id]])
	}
	t.Logf("%d answers served again after kills, %d of them to requests never given back; %d moves out of running audited, %d runs; %d requests given back by a run that did not hold them",
		servedAgain, unexplained, len(moves), len(runners), len(back))
	if unexplained > kills {
		t.Errorf("%d answers served again to requests no kill took from their run", unexplained)
	}
	checkSharedRows(t, conn, n)
}

// givenBack counts, by request, the moves back to pending made by another
// run than the one holding the lease: what killed runs held, given back
// by a live run's heartbeat (lease expired) or by a new run's Recover (the
// holder's process gone).
func givenBack(moves []auditMove, runners map[string]string) map[int64]int64 {
	back := map[int64]int64{}
	for _, m := range moves {
		if m.status == "pending" && !m.usedAttempt && m.owner != nil && runners[*m.owner] != m.recorder {
			back[m.request]++
		}
	}
	return back
}

// requestIDs maps each custom_id to its request's id.
func requestIDs(t *testing.T, conn *pgx.Conn) map[string]int64 {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT custom_id, id FROM requests`)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for rows.Next() {
		var cid string
		var id int64
		if err := rows.Scan(&cid, &id); err != nil {
			t.Fatal(err)
		}
		ids[cid] = id
	}
	return ids
}

// checkSharedExport checks the export and status of the chaos job: every
// request once, in input order, with the answer to its prompt and that
// answer's usage, or a permanent failure never served; the job's usage is
// the sum over the results, and the fake's the sum over what it served.
// It returns, by custom_id, how many times each request's answer was
// served again (beyond the first).
func checkSharedExport(t *testing.T, db string, srv *fakeapi.Server, lines []any) map[string]int64 {
	t.Helper()
	flat := exportJSONL(t, db, "shared", "flat")
	if len(flat) != len(lines) {
		t.Errorf("export has %d lines for %d requests", len(flat), len(lines))
	}
	oracle := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	fs := settled(t, srv)
	var want, served usageOf
	again := map[string]int64{}
	succeeded, failed := 0, 0
	for i, l := range flat[:min(len(flat), len(lines))] {
		in := lines[i].(map[string]any)
		if l["custom_id"] != in["custom_id"] {
			t.Fatalf("export line %d is %v, want %v (input order, each once)", i, l["custom_id"], in["custom_id"])
		}
		prompt := chaosPrompt(in)
		n := fs.ServedByKey[prompt]
		if strings.HasPrefix(prompt, "perm-") {
			failed++
			if l["status"] != "failed" || n != 0 {
				t.Errorf("%v: want a permanent failure never served, got %v (served %d)", in["custom_id"], l, n)
			}
			continue
		}
		succeeded++
		u := oracleUsage(t, oracle, in)
		if l["status"] != "succeeded" || l["content"] != "echo: "+prompt || flatUsage(l) != u || n < 1 {
			t.Errorf("%v: want the answer to %q with usage %+v, got %v (served %d)", in["custom_id"], prompt, u, l, n)
		}
		want.add(u, 1)
		served.add(u, n)
		if n > 1 {
			again[in["custom_id"].(string)] = n - 1
		}
	}
	st := statusJSON(t, db, "shared")
	checkStatusUsage(t, st, fs, want, served)
	for state, want := range map[string]int{"succeeded": succeeded, "failed": failed, "pending": 0, "running": 0} {
		if got := count(t, st, state); got != want {
			t.Errorf("status: %s = %d, want %d", state, got, want)
		}
	}
	if runners := st["runners"].([]any); len(runners) != 0 {
		t.Errorf("status lists %d live runs after all ended: %v", len(runners), runners)
	}
	return again
}

// checkSharedRows checks the rows behind the export: one result per
// success and none for anything else, and as many attempt rows as each
// request counts attempts.
func checkSharedRows(t *testing.T, conn *pgx.Conn, n int) {
	t.Helper()
	succeeded := pgInt(t, conn, `SELECT count(*) FROM requests WHERE status = 'succeeded'`)
	for _, c := range []struct {
		query string
		want  int
	}{
		{`SELECT count(*) FROM results`, succeeded},
		{`SELECT count(*) FROM results r JOIN requests q ON q.id = r.request_id WHERE q.status = 'succeeded'`, succeeded},
		{`SELECT count(*) FROM requests WHERE status IN ('succeeded', 'failed')`, n},
		{`SELECT count(*) FROM requests q WHERE attempts <> (SELECT count(*) FROM attempts a WHERE a.request_id = q.id)`, 0},
		{`SELECT count(*) FROM requests WHERE lease_owner IS NOT NULL`, 0},
		{`SELECT count(*) FROM job_runners`, 0},
	} {
		if got := pgInt(t, conn, c.query); got != c.want {
			t.Errorf("%s = %d, want %d", c.query, got, c.want)
		}
	}
}

// TestSharedLeaseTakeover: a run SIGSTOPped while it holds requests loses
// its lease; another run's heartbeat puts them back and that run answers
// and records them. SIGCONTed, the stopped run reads the answers that
// came while it slept, and none is recorded: each request keeps the one
// result the other run recorded, and the usage counts it once. The
// stopped run then stops, told it lost the job (or ends cleanly).
func TestSharedLeaseTakeover(t *testing.T) {
	const n, concurrency = 400, 8
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	srv := fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 300 * time.Millisecond})
	file := writeLines(t, dir, "takeover.jsonl", chatLines(n)...)
	mustCLI(t, nil, "--db", dsn, "import", "--job", "takeover", file)
	conn := pgConnect(t, dsn)
	if _, err := conn.Exec(context.Background(), auditSQL); err != nil {
		t.Fatalf("install the audit: %v", err)
	}
	start := func(name string) *proc {
		// A long --timeout: the calls of the stopped run must still be
		// waiting for their answers when it wakes, not timed out.
		return startBinary(t, dir, binEnv(dir), "--db", withApp(t, dsn, name), "run", "takeover",
			"--base-url", srv.URL(), "--concurrency", strconv.Itoa(concurrency), "--timeout", "30s",
			"--lease", sharedLease.String())
	}
	a := start("A")
	waitUntil(t, time.Minute, "run A's first answers", func() bool { return a.exited() || srv.Stats().Served >= 20 })
	b := start("B")
	waitRunners(t, dsn, "takeover", a, b)

	tokenA := pgString(t, conn, `SELECT token FROM audit_runners WHERE recorder = 'A'`)
	waitUntil(t, time.Minute, "run A to hold requests", func() bool {
		return pgInt(t, conn, `SELECT count(*) FROM requests WHERE status = 'running' AND lease_owner = $1`, tokenA) > 0
	})
	a.signal(syscall.SIGSTOP)
	stopped := time.Now()
	time.Sleep(200 * time.Millisecond) // what A had sent the database before the stop is done
	held := pgIDs(t, conn, `SELECT id FROM requests WHERE status = 'running' AND lease_owner = $1 ORDER BY id`, tokenA)
	if len(held) == 0 {
		t.Fatal("run A holds nothing at its stop")
	}
	waitUntil(t, 4*sharedLease, "A's requests to come back", func() bool {
		return pgInt(t, conn, `SELECT count(*) FROM requests WHERE status = 'running' AND lease_owner = $1`, tokenA) == 0
	})
	back := time.Since(stopped)
	if beat := sharedLease / 6; back < sharedLease-beat-200*time.Millisecond {
		t.Errorf("A's requests came back %s after its stop, before its lease of %s could expire", back, sharedLease)
	}
	waitUntil(t, time.Minute, "B to finish A's requests", func() bool {
		return pgInt(t, conn, `SELECT count(*) FROM requests WHERE id = ANY($1) AND status = 'succeeded'`, held) == len(held)
	})
	t.Logf("A stopped holding %d requests; back to pending after %s; finished by B %s after the stop",
		len(held), back.Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	a.signal(syscall.SIGCONT)
	codeA := a.wait(time.Minute)
	// It learns it lost the job from its heartbeat ("another run took the
	// job over"), or from a Record whose session the database ended while
	// it slept ("job lock lost").
	lostMsg := strings.Contains(a.stderr.String(), "another run took the job over") ||
		strings.Contains(a.stderr.String(), "job lock lost")
	if codeA != 0 && !(codeA == exitError && lostMsg) {
		t.Errorf("A after SIGCONT: exit %d, want it to stop for its lost lease (%d) or end cleanly\n%s", codeA, exitError, a.stderr.String())
	}
	b.expect(0, time.Minute)
	t.Logf("A: exit %d: %s", codeA, lastLine(a.stderr.String()))

	fs := settled(t, srv)
	twice := 0
	for i := range n {
		if fs.ServedByKey[fmt.Sprintf("prompt-%d", i)] > 1 {
			twice++
		}
	}
	if twice == 0 {
		t.Errorf("no prompt was answered twice: A's calls were not answered while it slept, and the test shows nothing")
	}
	flat := exportJSONL(t, dsn, "takeover", "flat")
	seen := map[string]bool{}
	var total float64
	for _, l := range flat {
		id := l["custom_id"].(string)
		if seen[id] || l["status"] != "succeeded" {
			t.Errorf("export line %v (seen before: %v)", l, seen[id])
		}
		seen[id] = true
		total += l["usage"].(map[string]any)["total_tokens"].(float64)
	}
	if len(seen) != n {
		t.Errorf("%d requests exported, want %d", len(seen), n)
	}
	st := statusJSON(t, dsn, "takeover")
	if got := st["usage"].(map[string]any)["total_tokens"].(float64); got != total || int64(got) >= fs.Usage.TotalTokens {
		t.Errorf("status counts %v tokens, the results %v, the fake served %d: want the results' once, below what was served twice",
			got, total, fs.Usage.TotalTokens)
	}
	moves, runners := readAudit(t, conn)
	finished := checkAudit(t, moves, runners)
	for _, id := range held {
		if m := finished[id]; m.recorder != "B" {
			t.Errorf("request %d, held by A at its stop, finished by %q, want B", id, m.recorder)
		}
	}
	t.Logf("%d of %d prompts answered twice (A's late answers, discarded); %d moves audited", twice, n, len(moves))
	checkSharedRows(t, conn, n)
}

func pgString(t *testing.T, conn *pgx.Conn, query string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return s
}

func pgIDs(t *testing.T, conn *pgx.Conn, query string, args ...any) []int64 {
	t.Helper()
	rows, err := conn.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
