package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// The copy contract (jobs.JobCopier, through jobs.Copy): a job copied to
// another database, of the same engine or another, holds there every row
// it held — requests with their bodies, metadata, statuses, attempt
// counts, not-before times, errors and cache keys, the lines kept
// invalid, the attempts, the results byte for byte, the provider batches,
// the settings and how its last run ended — under ids of the target's own
// in the same order; the source is left as it was; the copy reads back as
// the original does (records, statistics, report) and goes on where the
// original stood (claims, recovery, its open batch). A name the target
// holds and a job a live run works are refused, and a load that fails
// half-way stores nothing.

// RunCopy runs the copy contract, each case copying from a fresh store of
// from to a fresh store of to. from and to may be the same engine's
// constructor: each call gives a store of its own.
func RunCopy(t *testing.T, from, to func(t *testing.T) jobs.Store) {
	t.Helper()
	cases := []struct {
		name string
		test func(t *testing.T, from, to jobs.Store)
	}{
		{"EveryRowExactly", testCopyEveryRow},
		{"TargetContinues", testCopyContinues},
		{"NameTakenRefused", testCopyNameTaken},
		{"LiveRunRefused", testCopyLiveRun},
		{"TwiceKeepsBatchKeysApart", testCopyTwice},
		{"ManyChunks", testCopyManyChunks},
		{"FailedLoadStoresNothing", testCopyFailedLoad},
		{"MissingJob", testCopyMissingJob},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.test(t, from(t), to(t)) })
	}
}

// CopyChain builds a job with every kind of row in the first store and
// copies it from each store to the next (the name kept), checking each
// copy against the original: a job carried across engines and back
// (SQLite → PostgreSQL → SQLite) loses nothing on the way.
func CopyChain(t *testing.T, stores ...jobs.Store) {
	t.Helper()
	original := buildRichJob(t, stores[0])
	job := original
	for i := 1; i < len(stores); i++ {
		job = mustCopy(t, stores[i-1], stores[i], job, jobs.CopyOptions{})
		checkSameJob(t, fmt.Sprintf("copy %d", i), stores[0], stores[i], original.ID, job.ID)
	}
}

// richT is when the rich job's run stopped; requests put back wait until
// richT+1h.
var richT = t0.Add(time.Minute)

// richSettings are the settings the rich job was created with.
var richSettings = jobs.Settings{BaseURL: "http://127.0.0.1:9/v1", Shape: map[string][]string{"model": {"m-v3"}, "stream": {"true"}},
	Prices: &jobs.Prices{Currency: "USD", ByModel: map[string]jobs.Price{"m-v3": {Input: 0.27, Output: 1.1}}}, MaxTokens: 90_000}

// buildRichJob makes, through the Store interface, a job "rich" of 14
// lines holding every kind of row a job can hold:
//
//	1  succeeded, streamed (TTFT 90 ms), with metadata and a cache key
//	2  failed permanently, with the provider's error body and request id
//	3  kept invalid (invalid JSON)
//	4  pending after a 429: one attempt used, not before richT+1h
//	5  an embeddings request, succeeded (no TTFT)
//	6  a completions request, handed back unsent, then claimed by a run
//	   that is gone: running, an orphan
//	7  succeeded, streamed, its first token under a millisecond
//	8  answered from the cache (line 1's key), after a 500
//	9  succeeded in provider batch 1 (submitted, open)
//	10 running in provider batch 1
//	11 and 12 back to pending from provider batch 2 (expired, collected)
//	13 kept invalid: a second use of req-1's custom_id
//	14 pending, never tried
//
// and settings, and an end of run.
func buildRichJob(t *testing.T, st jobs.Store) jobs.Job {
	t.Helper()
	in := richInput()
	job, err := st.Import(t.Context(), jobs.Job{Name: "rich", Source: "rich.jsonl", Fingerprint: "fp-rich",
		DefaultModel: "m-v3", Settings: richSettings}, &source{reqs: in, keep: true})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	online := mustClaim(t, st, job.ID, 7) // lines 1, 2, 4, 5, 6, 7, 8
	if got, want := linesOf(online), []int{1, 2, 4, 5, 6, 7, 8}; !slices.Equal(got, want) {
		t.Fatalf("claimed lines %v, want %v", got, want)
	}
	mustRecord(t, st, richOutcomes(online)...)
	runPass(t, st, job.ID, 10) // line 8, from line 1's answer
	ids := requestIDs(t, st, job.ID)
	richBatches(t, st, job.ID, ids)
	if got := linesOf(mustClaimAt(t, st, job.ID, 1, richT)); !slices.Equal(got, []int{6}) {
		t.Fatalf("claimed lines %v, want [6] to leave running", got)
	}
	if err := st.EndRun(t.Context(), job.ID, jobs.EndInterrupted, "interrupted by a signal", richT); err != nil {
		t.Fatalf("EndRun: %v", err)
	}
	return mustJob(t, st, "rich")
}

// richInput is the rich job's input file, as a reader keeping invalid
// lines hands it out.
func richInput() []jobs.Request {
	in := chats(14)
	in[0] = keyed(1, "k1")
	in[0].Metadata = []byte(`{"row":1,"tags":["a","b"]}`)
	in[1].CacheKey = "key-k2"
	in[2] = invalidLine(3, "req-3", "invalid JSON")
	in[4] = embedding(5)
	in[5] = jobs.Request{Line: 6, CustomID: "cmp-6", Endpoint: jobs.EndpointCompletions, Model: "m-base",
		Body: []byte(`{"model":"m-base","prompt":["a","b"],"max_tokens":3}`)}
	in[7] = keyed(8, "k1")
	in[12].CustomID = "req-1" // a duplicate: kept invalid too
	return in
}

// richOutcomes are the outcomes of the rich job's online claims.
func richOutcomes(online []jobs.Request) []jobs.Outcome {
	bad := failPermanently(online[1], "model not found")
	bad.Failure.Body, bad.Failure.RequestID = []byte(`{"error":{"message":"model not found","code":404}}`), "req-xyz"
	fast := answer(online[5], "seven", 40*time.Millisecond)
	fast.Result.TTFT = 400 * time.Microsecond
	retried := rateLimited(online[6], "server error", t0)
	retried.Attempt.StatusCode, retried.Attempt.Class, retried.Failure.StatusCode = 500, jobs.ClassServer, 500
	return []jobs.Outcome{
		timed(answer(online[0], "one", 800*time.Millisecond), t0, 800*time.Millisecond),
		timed(bad, t0.Add(time.Second), 200*time.Millisecond),
		timed(rateLimited(online[2], "slow down", richT.Add(time.Hour)), t0.Add(2*time.Second), 50*time.Millisecond),
		timed(embedded(online[3]), t0.Add(3*time.Second), time.Second),
		handBack(online[4]),
		timed(fast, t0.Add(4*time.Second), 40*time.Millisecond),
		timed(retried, t0.Add(5*time.Second), 3*time.Second),
	}
}

// richBatches sends lines 9 and 10 in a batch left submitted, line 9
// answered, and lines 11 and 12 in a batch that expired and was
// collected.
func richBatches(t *testing.T, st jobs.Store, jobID int64, ids []int64) {
	t.Helper()
	b1 := mustCreateBatch(t, st, jobID, "llmbatch-rich-0a1b2c.jsonl", ids[8:10])
	b1.State, b1.InputFileID, b1.BatchID, b1.ProviderStatus = jobs.BatchSubmitted, "file-in-1", "batch-1", "in_progress"
	b1.Counts = jobs.BatchCounts{Total: 2, Completed: 1}
	if err := st.UpdateBatch(t.Context(), b1); err != nil {
		t.Fatalf("UpdateBatch: %v", err)
	}
	sent := batchRequests(t, st, b1.ID, false)
	mustRecord(t, st, timed(batchAnswer(sent[0], b1.ID, "nine"), t0.Add(6*time.Second), 0))
	b2 := mustCreateBatch(t, st, jobID, "llmbatch-rich-3d4e5f.jsonl", ids[10:12])
	b2.State, b2.InputFileID, b2.BatchID, b2.ProviderStatus = jobs.BatchEnded, "file-in-2", "batch-2", "expired"
	b2.Message = "the batch expired"
	if err := st.UpdateBatch(t.Context(), b2); err != nil {
		t.Fatalf("UpdateBatch: %v", err)
	}
	mustCollect(t, st, b2.ID, 2)
}

// testCopyEveryRow: the copy of the rich job holds every row of it, as
// dumped, read (records with bodies, invalid lines), counted (statistics,
// models) and reported; the source is unchanged; the copy counts what it
// moved. The target holds a job already, so that the copy's ids are not
// the source's.
func testCopyEveryRow(t *testing.T, from, to jobs.Store) {
	mustImport(t, to, "other", chats(3))
	job := buildRichJob(t, from)
	before := dumpOf(t, from, job.ID)
	got, n, err := jobs.Copy(t.Context(), from, to, job, jobs.CopyOptions{StaleAfter: time.Minute})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	want := jobs.CopyCounts{Requests: 14, Attempts: 7, Results: 5, Batches: 2, Invalid: 2}
	if n != want {
		t.Errorf("Copy counted %+v, want %+v", n, want)
	}
	if got.Name != "rich" || got.Total != 14 || got.State != jobs.JobActive || got.Lock.Token != "" {
		t.Errorf("Copy returned %+v, want the active job rich of 14 requests, unlocked", got)
	}
	checkSameJob(t, "copy", from, to, job.ID, got.ID)
	if after := dumpOf(t, from, job.ID); !reflect.DeepEqual(before, after) {
		t.Errorf("the source changed:\n%s", firstDiff(before, after))
	}
	if jobs := mustJobNames(t, to); !slices.Equal(jobs, []string{"other", "rich"}) {
		t.Errorf("target jobs = %v, want [other rich]", jobs)
	}
}

// testCopyContinues: on the target the copy goes on where the source
// stood: the orphan is recovered, the due requests are claimed in input
// order and the waiting one once due, and the open batch's last request
// is still the batch's, and its answer recorded.
func testCopyContinues(t *testing.T, from, to jobs.Store) {
	job := mustCopy(t, from, to, buildRichJob(t, from), jobs.CopyOptions{})
	if n, err := to.Recover(t.Context(), job.ID); err != nil || n != 1 {
		t.Errorf("Recover() = %d, %v; want 1 (line 6, left running by a run that is gone)", n, err)
	}
	if n, next, err := to.Waiting(t.Context(), job.ID); err != nil || n != 5 || !next.IsZero() && next.After(richT) {
		t.Errorf("Waiting() = %d, %v, %v; want 5 pending, one due now", n, next, err)
	}
	if got, want := linesOf(mustClaimAt(t, to, job.ID, 10, richT)), []int{6, 11, 12, 14}; !slices.Equal(got, want) {
		t.Errorf("claimed lines %v, want %v", got, want)
	}
	later := mustClaimAt(t, to, job.ID, 10, richT.Add(2*time.Hour))
	if got := linesOf(later); !slices.Equal(got, []int{4}) || later[0].Attempts != 1 {
		t.Errorf("claimed lines %v later, want [4] with its one attempt", got)
	}
	batches := mustBatches(t, to, job.ID)
	if len(batches) != 2 || batches[0].State != jobs.BatchSubmitted || batches[0].BatchID != "batch-1" {
		t.Fatalf("batches = %+v, want the submitted batch-1 first", batches)
	}
	sent := batchRequests(t, to, batches[0].ID, true)
	if len(sent) != 1 || sent[0].Line != 10 || len(sent[0].Body) == 0 {
		t.Fatalf("BatchRequests = %+v, want line 10 with its body", sent)
	}
	mustRecord(t, to, batchAnswer(sent[0], batches[0].ID, "ten"))
	if recs := mustRecords(t, to, job.ID); recs[9].Request.Status != jobs.StatusSucceeded ||
		recs[9].Result == nil || recs[9].Result.ProviderBatch != batches[0].ID {
		t.Errorf("line 10 = %+v, want succeeded in the copy's batch %d", recs[9], batches[0].ID)
	}
	mustCollect(t, to, batches[0].ID, 0)
}

// testCopyNameTaken: a name the target holds is refused, naming it, and
// nothing is stored; --job NEW copies under another name.
func testCopyNameTaken(t *testing.T, from, to jobs.Store) {
	job := buildRichJob(t, from)
	mustImport(t, to, "rich", chats(2))
	_, _, err := jobs.Copy(t.Context(), from, to, job, jobs.CopyOptions{})
	if !errors.Is(err, jobs.ErrJobExists) || !strings.Contains(err.Error(), `"rich"`) {
		t.Errorf("Copy onto a taken name = %v, want ErrJobExists naming \"rich\"", err)
	}
	if got := mustJob(t, to, "rich"); got.Total != 2 {
		t.Errorf("the target's job rich has %d requests, want its own 2", got.Total)
	}
	got := mustCopy(t, from, to, job, jobs.CopyOptions{Name: "rich-copy"})
	if got.Name != "rich-copy" {
		t.Errorf("copied as %q, want rich-copy", got.Name)
	}
	checkSameJob(t, "renamed copy", from, to, job.ID, got.ID)
}

// testCopyLiveRun: a job whose lock a live run holds is refused, naming
// that run, and nothing is stored; a stale lock, or one whose holder is
// dead, is no live run.
func testCopyLiveRun(t *testing.T, from, to jobs.Store) {
	job := mustImport(t, from, "live", chats(3))
	owner := jobs.LockOwner{Token: "run-1", PID: 4242, Host: "laptop"}
	if err := from.Lock(t.Context(), job.ID, owner, time.Minute, nil); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	job = mustJob(t, from, "live")
	_, _, err := jobs.Copy(t.Context(), from, to, job, jobs.CopyOptions{StaleAfter: time.Minute})
	var le *jobs.LockedError
	if !errors.As(err, &le) || le.Holder.PID != 4242 || le.Holder.Host != "laptop" {
		t.Fatalf("Copy of a live job = %v, want a *LockedError naming pid 4242 on laptop", err)
	}
	if _, err := to.Job(t.Context(), "live"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("after the refusal the target's Job(live) = %v, want ErrNotFound", err)
	}
	dead := func(o jobs.LockOwner) bool { return o.Token == "run-1" }
	copies := []jobs.Job{mustCopy(t, from, to, job, jobs.CopyOptions{Name: "dead", StaleAfter: time.Minute, Dead: dead})}
	if _, shared := from.(jobs.Runners); !shared {
		// Where runs share jobs, the engine's lease says who is live.
		copies = append(copies, mustCopy(t, from, to, job, jobs.CopyOptions{Name: "stale", StaleAfter: time.Minute,
			Now: func() time.Time { return time.Now().Add(time.Hour) }}))
	}
	for _, j := range copies {
		if j.Lock.Token != "" || mustJob(t, to, j.Name).Lock.Token != "" {
			t.Errorf("copy %s holds a lock: %+v; a copy has none", j.Name, j.Lock)
		}
	}
	if mustJob(t, from, "live").Lock != owner {
		t.Errorf("the source's lock changed")
	}
}

// testCopyTwice: a job copied twice into one database (under two names)
// keeps its provider batches' keys apart: the second copy's take the
// first free CopyKey.
func testCopyTwice(t *testing.T, from, to jobs.Store) {
	job := buildRichJob(t, from)
	first := mustCopy(t, from, to, job, jobs.CopyOptions{})
	second := mustCopy(t, from, to, job, jobs.CopyOptions{Name: "rich-2"})
	back := mustCopy(t, to, from, second, jobs.CopyOptions{Name: "rich-3"})
	src := mustBatches(t, from, job.ID)
	for _, c := range []struct {
		st   jobs.Store
		job  jobs.Job
		keys func(string) string
	}{
		{to, first, func(k string) string { return k }},
		{to, second, func(k string) string { return jobs.CopyKey(k, 1) }},
		{from, back, func(k string) string { return jobs.CopyKey(k, 1) }},
	} {
		got := mustBatches(t, c.st, c.job.ID)
		for i := range src {
			if want := c.keys(src[i].Key); i >= len(got) || got[i].Key != want {
				t.Errorf("%s: batch %d = %+v, want key %q", c.job.Name, i+1, got, want)
			}
		}
	}
	checkSameJob(t, "second copy", from, to, job.ID, second.ID)
	checkSameJob(t, "copied back", from, from, job.ID, back.ID)
}

// testCopyManyChunks: a job of more requests than a chunk, each with
// attempts and some with results, copies exactly: attempts stay with
// their requests across the chunks' edges.
func testCopyManyChunks(t *testing.T, from, to jobs.Store) {
	const n = 2600
	job := mustImport(t, from, "many", chats(n))
	claimed := mustClaim(t, from, job.ID, n)
	var outs []jobs.Outcome
	for i, r := range claimed {
		outs = append(outs, timed(rateLimited(r, fmt.Sprintf("busy %d", i), t0), t0.Add(time.Duration(i)*time.Millisecond), time.Millisecond))
	}
	mustRecord(t, from, outs...)
	again := mustClaim(t, from, job.ID, n)
	outs = outs[:0]
	for i, r := range again {
		o := timed(answer(r, fmt.Sprintf("a%d", i), time.Second), t0.Add(time.Hour), time.Second)
		if i%3 == 0 {
			o = timed(failPermanently(r, "no"), t0.Add(time.Hour), time.Second)
		}
		outs = append(outs, o)
	}
	mustRecord(t, from, outs...)
	got, counted, err := jobs.Copy(t.Context(), from, to, job, jobs.CopyOptions{})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if counted.Requests != n || counted.Attempts != 2*n || counted.Results != n-(n+2)/3 {
		t.Errorf("Copy counted %+v, want %d requests, %d attempts, %d results", counted, n, 2*n, n-(n+2)/3)
	}
	checkSameJob(t, "copy", from, to, job.ID, got.ID)
}

// testCopyFailedLoad: a source that fails after its first chunk leaves
// the target without the job, and a copy after it succeeds.
func testCopyFailedLoad(t *testing.T, from, to jobs.Store) {
	job := buildRichJob(t, from)
	d := dumpOf(t, from, job.ID)
	loader, ok := to.(jobs.JobCopier)
	if !ok {
		t.Fatalf("%T is no jobs.JobCopier", to)
	}
	broken := errors.New("connection reset")
	src := &sliceSource{head: d.head, chunks: [][]jobs.CopyRequest{d.reqs[:5], d.reqs[5:]}, failAt: 1, err: broken}
	if _, err := loader.LoadJob(t.Context(), src); !errors.Is(err, broken) {
		t.Errorf("LoadJob with a broken source = %v, want its error", err)
	}
	if names := mustJobNames(t, to); len(names) != 0 {
		t.Errorf("after a failed load the target holds %v, want nothing", names)
	}
	got := mustCopy(t, from, to, job, jobs.CopyOptions{})
	checkSameJob(t, "copy after a failed load", from, to, job.ID, got.ID)
}

// testCopyMissingJob: a job the source does not hold is jobs.ErrNotFound.
func testCopyMissingJob(t *testing.T, from, _ jobs.Store) {
	dumper, ok := from.(jobs.JobCopier)
	if !ok {
		t.Fatalf("%T is no jobs.JobCopier", from)
	}
	err := dumper.DumpJob(t.Context(), 424242, func(jobs.CopyPart) error { return nil })
	if !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("DumpJob of a missing job = %v, want ErrNotFound", err)
	}
}

// sliceSource is a jobs.CopySource over chunks in memory that fails with
// err at chunk failAt.
type sliceSource struct {
	head   jobs.CopyHead
	chunks [][]jobs.CopyRequest
	next   int
	failAt int
	err    error
}

func (s *sliceSource) Head() jobs.CopyHead { return s.head }

func (s *sliceSource) Next() ([]jobs.CopyRequest, error) {
	if s.next == s.failAt {
		return nil, s.err
	}
	if s.next >= len(s.chunks) {
		return nil, io.EOF
	}
	s.next++
	return s.chunks[s.next-1], nil
}

func mustCopy(t *testing.T, from, to jobs.Store, job jobs.Job, opts jobs.CopyOptions) jobs.Job {
	t.Helper()
	got, _, err := jobs.Copy(t.Context(), from, to, job, opts)
	if err != nil {
		t.Fatalf("Copy(%s): %v", job.Name, err)
	}
	return got
}

func mustJobNames(t *testing.T, st jobs.Store) []string {
	t.Helper()
	list, err := st.Jobs(t.Context())
	if err != nil {
		t.Fatalf("Jobs: %v", err)
	}
	var names []string
	for _, j := range list {
		names = append(names, j.Name)
	}
	return names
}

// checkSameJob checks that job b of st holds what job a of src does: the
// same dump (ids aside, and the batch keys up to CopyKey), the same
// records with bodies, invalid lines, statistics, models and report.
func checkSameJob(t *testing.T, what string, src, st jobs.Store, a, b int64) {
	t.Helper()
	da, db := dumpOf(t, src, a), dumpOf(t, st, b)
	da.head.Job.Name, db.head.Job.Name = "", ""
	for i := range db.head.Batches {
		if i < len(da.head.Batches) && isCopyKey(db.head.Batches[i].Key, da.head.Batches[i].Key) {
			db.head.Batches[i].Key = da.head.Batches[i].Key
		}
	}
	if !reflect.DeepEqual(da, db) {
		t.Errorf("%s: the dumps differ:\n%s", what, firstDiff(da, db))
	}
	ra, rb := normalRecords(t, src, a), normalRecords(t, st, b)
	if !reflect.DeepEqual(ra, rb) {
		t.Errorf("%s: the records differ:\n%s", what, firstRecordDiff(ra, rb))
	}
	checkSameReadings(t, what, src, st, a, b)
}

// checkSameReadings compares what status and report read of two jobs.
func checkSameReadings(t *testing.T, what string, src, st jobs.Store, a, b int64) {
	t.Helper()
	ma, total, err := src.InvalidLines(t.Context(), a, 100)
	mb, totalB, errB := st.InvalidLines(t.Context(), b, 100)
	if err != nil || errB != nil || total != totalB || !slices.Equal(ma, mb) {
		t.Errorf("%s: InvalidLines %q (%d), %v; want %q (%d)", what, mb, totalB, errB, ma, total)
	}
	sa, sb := normalStats(mustStats(t, src, a)), normalStats(mustStats(t, st, b))
	if !reflect.DeepEqual(sa, sb) {
		t.Errorf("%s: Stats differ:\n got %+v\nwant %+v", what, sb, sa)
	}
	opts := jobs.DefaultReportOptions
	pa, err := src.Report(t.Context(), a, opts)
	pb, errB := st.Report(t.Context(), b, opts)
	if err != nil || errB != nil {
		t.Fatalf("%s: Report: %v, %v", what, err, errB)
	}
	pa.Stats, pb.Stats = jobs.Stats{}, jobs.Stats{}
	if !reflect.DeepEqual(pa, pb) {
		t.Errorf("%s: Report differs:\n got %+v\nwant %+v", what, pb, pa)
	}
	for _, models := range []func(jobs.Store, context.Context, int64) ([]string, error){
		jobs.Store.Models, jobs.Store.OpenModels} {
		la, err := models(src, t.Context(), a)
		lb, errB := models(st, t.Context(), b)
		if err != nil || errB != nil || !slices.Equal(la, lb) {
			t.Errorf("%s: models %v, %v; want %v, %v", what, lb, errB, la, err)
		}
	}
}

// normalStats is s without what names the job or the moment it was read.
func normalStats(s jobs.Stats) jobs.Stats {
	s.Job, s.At = jobs.Job{}, time.Time{}
	return s
}

func isCopyKey(key, of string) bool {
	for n := 1; n < 10; n++ {
		if key == jobs.CopyKey(of, n) {
			return true
		}
	}
	return false
}

// dump is a job as DumpJob gives it, with the ids of this database
// replaced by positions (requests by input order, batches by age), so
// that two databases' copies compare equal.
type dump struct {
	head jobs.CopyHead
	reqs []jobs.CopyRequest
}

// dumpOf reads the whole job through DumpJob, in memory (a test's job is
// small), and numbers its ids.
func dumpOf(t *testing.T, st jobs.Store, jobID int64) dump {
	t.Helper()
	c, ok := st.(jobs.JobCopier)
	if !ok {
		t.Fatalf("%T is no jobs.JobCopier", st)
	}
	var d dump
	heads := 0
	err := c.DumpJob(t.Context(), jobID, func(p jobs.CopyPart) error {
		if p.Head != nil {
			d.head, heads = *p.Head, heads+1
		} else if heads != 1 {
			return errors.New("requests before the head")
		}
		d.reqs = append(d.reqs, p.Requests...)
		return nil
	})
	if err != nil || heads != 1 {
		t.Fatalf("DumpJob(%d) = %v with %d heads", jobID, err, heads)
	}
	d.normalize()
	return d
}

func (d *dump) normalize() {
	d.head.Job.ID, d.head.Job.Lock, d.head.Job.LockHeartbeat = 0, jobs.LockOwner{}, time.Time{}
	if len(d.head.Batches) == 0 {
		d.head.Batches = nil // none, however an engine spells it
	}
	batches := map[int64]int64{0: 0}
	for i := range d.head.Batches {
		b := &d.head.Batches[i]
		batches[b.ID] = int64(i + 1)
		b.ID, b.JobID = int64(i+1), 0
	}
	reqs := map[int64]int64{}
	for i := range d.reqs {
		reqs[d.reqs[i].Request.ID] = int64(i + 1)
	}
	for i := range d.reqs {
		c := &d.reqs[i]
		c.Request.ID, c.Request.JobID, c.Batch = int64(i+1), 0, batches[c.Batch]
		for j := range c.Attempts {
			c.Attempts[j].RequestID, c.Attempts[j].ProviderBatch = reqs[c.Attempts[j].RequestID], batches[c.Attempts[j].ProviderBatch]
		}
		if c.Result != nil {
			c.Result.RequestID, c.Result.ProviderBatch = reqs[c.Result.RequestID], batches[c.Result.ProviderBatch]
		}
	}
}

// firstDiff describes the first difference of two dumps.
func firstDiff(a, b dump) string {
	if !reflect.DeepEqual(a.head, b.head) {
		return fmt.Sprintf("head:\n got %+v\nwant %+v", b.head, a.head)
	}
	for i := range max(len(a.reqs), len(b.reqs)) {
		if i >= len(a.reqs) || i >= len(b.reqs) {
			return fmt.Sprintf("%d requests, want %d", len(b.reqs), len(a.reqs))
		}
		if !reflect.DeepEqual(a.reqs[i], b.reqs[i]) {
			return fmt.Sprintf("request %d:\n got %s\nwant %s", i+1, describe(b.reqs[i]), describe(a.reqs[i]))
		}
	}
	return "(no difference found)"
}

func describe(c jobs.CopyRequest) string {
	s := fmt.Sprintf("%+v body=%q meta=%q failure=%+v nostatus=%v batch=%d attempts=%+v cached=%v ttft=%v",
		c.Request, c.Request.Body, c.Request.Metadata, c.Failure, c.NoStatusCode, c.Batch, c.Attempts, c.Cached, c.HasTTFT)
	if c.Result != nil {
		s += fmt.Sprintf(" result=%+v raw=%q", *c.Result, c.Result.Raw)
	}
	return s
}

// normalRecords reads the job's records with their bodies, ids numbered
// as dumpOf numbers them.
func normalRecords(t *testing.T, st jobs.Store, jobID int64) []jobs.Record {
	t.Helper()
	var recs []jobs.Record
	ids := map[int64]int64{0: 0}
	batches := map[int64]int64{0: 0}
	for i, b := range mustBatches(t, st, jobID) {
		batches[b.ID] = int64(i + 1)
	}
	err := st.RecordsWith(t.Context(), jobID, jobs.RecordOptions{Bodies: true}, func(r jobs.Record) error {
		ids[r.Request.ID] = int64(len(recs) + 1)
		r.Request.ID, r.Request.JobID = ids[r.Request.ID], 0
		if r.Result != nil {
			r.Result.RequestID, r.Result.ProviderBatch = r.Request.ID, batches[r.Result.ProviderBatch]
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatalf("RecordsWith: %v", err)
	}
	return recs
}

func firstRecordDiff(a, b []jobs.Record) string {
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) {
			return fmt.Sprintf("%d records, want %d", len(b), len(a))
		}
		if !reflect.DeepEqual(a[i], b[i]) {
			return fmt.Sprintf("record %d:\n got %+v %+v %+v\nwant %+v %+v %+v", i+1,
				b[i].Request, b[i].Result, b[i].Failure, a[i].Request, a[i].Result, a[i].Failure)
		}
	}
	return "(no difference found)"
}
