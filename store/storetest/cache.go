package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// runPass runs a cache pass over the job to its end, n requests a step,
// and returns how many it answered.
func runPass(t *testing.T, st jobs.Store, jobID int64, n int) int {
	t.Helper()
	p := st.NewCachePass(jobID)
	for steps := 0; ; steps++ {
		more, err := p.Next(t.Context(), n)
		if err != nil {
			t.Fatalf("CachePass.Next: %v", err)
		}
		if !more {
			return p.Answered()
		}
		if steps > 1000 {
			t.Fatal("the cache pass does not end")
		}
	}
}

// testCacheAnswers: a pending request is answered with a copy of the result
// of an earlier identical request, of any job; nothing is sent, counted or
// charged for it, and a failed request answers nothing.
func testCacheAnswers(t *testing.T, st jobs.Store) {
	a := mustImport(t, st, "a", []jobs.Request{keyed(1, "k1"), keyed(2, "k2"), keyed(3, "k3"), keyed(4, "k4")})
	reqs := mustClaim(t, st, a.ID, 3)
	mustRecord(t, st, answer(reqs[0], "one", 700*time.Millisecond), answer(reqs[1], "two", 700*time.Millisecond),
		failPermanently(reqs[2], "bad"))
	b := mustImport(t, st, "b", []jobs.Request{keyed(1, "k2"), keyed(2, "k3"), keyed(3, "k1"), keyed(4, "k4"),
		keyed(5, "k5"), keyed(6, "")})
	var retried []jobs.Outcome // each failed once before: the error of an answered one goes
	for _, r := range mustClaim(t, st, b.ID, 6) {
		retried = append(retried, rateLimited(r, "slow", time.Time{}))
	}
	mustRecord(t, st, retried...)
	if n := runPass(t, st, b.ID, 100); n != 2 {
		t.Fatalf("the cache pass answered %d requests, want 2", n)
	}
	recs := mustRecords(t, st, b.ID)
	for i, text := range map[int]string{0: "two", 2: "one"} {
		checkCopy(t, recs[i], text)
	}
	for _, i := range []int{1, 3, 4, 5} {
		if r := recs[i]; r.Request.Status != jobs.StatusPending || r.Result != nil || r.Failure == nil {
			t.Errorf("line %d = %s, result %v, failure %v; want pending with its error", i+1, r.Request.Status, r.Result, r.Failure)
		}
	}
	checkCachedStats(t, mustStats(t, st, b.ID), mustStats(t, st, a.ID))
	checkCachedReport(t, st, b.ID)
	if sum, err := st.BeginSummary(t.Context(), b.ID); err != nil {
		t.Fatalf("BeginSummary: %v", err)
	} else if got := sum.Counts().Cached; got != 2 {
		t.Errorf("Summary.Counts().Cached = %d, want the 2 answered from the cache", got)
	} else {
		sum.Close()
	}
	if n := runPass(t, st, b.ID, 100); n != 0 {
		t.Errorf("a second pass answered %d, want 0", n)
	}
	if got := linesOf(mustClaim(t, st, b.ID, 10)); !slices.Equal(got, []int{2, 4, 5, 6}) {
		t.Errorf("claimed lines %v, want those not answered [2 4 5 6]", got)
	}
}

// checkCachedReport checks that the report of a job whose only results
// came from the cache shows no latency: nothing was asked, as Stats says.
func checkCachedReport(t *testing.T, st jobs.Store, jobID int64) {
	t.Helper()
	rep, err := st.Report(t.Context(), jobID, jobs.DefaultReportOptions)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if rep.Latency.Count != 0 || rep.TTFT.Count != 0 || len(rep.Slowest) != 0 {
		t.Errorf("report of results copied from the cache: latency %d, ttft %d, slowest %d; want none (nothing was asked)",
			rep.Latency.Count, rep.TTFT.Count, len(rep.Slowest))
	}
}

// checkCopy checks that r was answered from the cache with a copy of the
// result whose content was text.
func checkCopy(t *testing.T, r jobs.Record, text string) {
	t.Helper()
	res := r.Result
	if r.Request.Status != jobs.StatusSucceeded || r.Failure != nil || res == nil {
		t.Fatalf("line %d = %s, result %v, failure %+v; want succeeded from the cache", r.Request.Line, r.Request.Status, res, r.Failure)
	}
	if res.Content != text || string(res.Raw) != `{"id":"resp-`+text+`","choices":[]}` || res.ResponseID != "resp-"+text ||
		res.ReasoningContent != "thought "+text || res.Usage.TotalTokens != 15 || res.ProviderRequestID != "prov-"+text ||
		res.FinishReason != "stop" || res.StatusCode != 200 || res.CreatedAt.IsZero() {
		t.Errorf("line %d: result %+v, want a copy of %q's", r.Request.Line, res, text)
	}
}

// checkCachedStats: b's two cached answers cost nothing and count no
// attempt or latency; a's originals still count.
func checkCachedStats(t *testing.T, b, a jobs.Stats) {
	t.Helper()
	if b.Cached != 2 || b.Usage != (jobs.Usage{}) || len(b.Models) != 0 || b.ResultsWithoutUsage != 0 ||
		b.LatencyP50 != 0 || b.Attempts != 6 || b.Counts[jobs.StatusSucceeded] != 2 {
		t.Errorf("Stats(b) = %d cached, %d succeeded, usage %+v, models %+v, %d without usage, p50 %v, %d attempts;"+
			" want 2 cached that cost nothing, and the 6 attempts made", b.Cached, b.Counts[jobs.StatusSucceeded], b.Usage,
			b.Models, b.ResultsWithoutUsage, b.LatencyP50, b.Attempts)
	}
	if a.Cached != 0 || a.Usage.TotalTokens != 30 || a.LatencyP50 != 700*time.Millisecond {
		t.Errorf("Stats(a) = %d cached, usage %+v, p50 %v; want 0, 30 tokens, 700ms", a.Cached, a.Usage, a.LatencyP50)
	}
}

// testCacheNothingToAnswer: in a database with no result yet, the first
// step of a pass ends it, whatever the step's size; nothing is answered.
func testCacheNothingToAnswer(t *testing.T, st jobs.Store) {
	a := mustImport(t, st, "a", []jobs.Request{keyed(1, "k1"), keyed(2, "k1"), keyed(3, "k2")})
	more, err := st.NewCachePass(a.ID).Next(t.Context(), 1)
	if err != nil || more {
		t.Fatalf("CachePass.Next = %v, %v in a database without results; want false, nil", more, err)
	}
	// Once one request has its answer, the pass looks again.
	mustRecord(t, st, answer(mustClaim(t, st, a.ID, 1)[0], "one", time.Second))
	if n := runPass(t, st, a.ID, 1); n != 1 {
		t.Errorf("the cache pass answered %d requests after the first answer, want 1", n)
	}
}

// testCacheChunks: a pass in steps answers in claim order, and a claim
// between its steps takes only requests the pass has not answered; a
// request claimed first is sent, not answered.
func testCacheChunks(t *testing.T, st jobs.Store) {
	a := mustImport(t, st, "a", []jobs.Request{keyed(1, "k1"), keyed(2, "k2"), keyed(3, "k3")})
	reqs := mustClaim(t, st, a.ID, 3)
	mustRecord(t, st, answer(reqs[0], "one", time.Second), answer(reqs[1], "two", time.Second),
		answer(reqs[2], "three", time.Second))
	b := mustImport(t, st, "b", []jobs.Request{keyed(1, "k1"), keyed(2, "k2"), keyed(3, "k3"), keyed(4, "n4"),
		keyed(5, "n5"), keyed(6, "n6"), keyed(7, "k1"), keyed(8, "n8")})
	p := st.NewCachePass(b.ID)
	if more, err := p.Next(t.Context(), 2); err != nil || !more || p.Answered() != 2 {
		t.Fatalf("first step: more %v, answered %d, %v; want more, 2", more, p.Answered(), err)
	}
	if got := linesOf(mustClaim(t, st, b.ID, 2)); !slices.Equal(got, []int{3, 4}) {
		t.Fatalf("claimed lines %v between the steps, want [3 4] (1 and 2 answered)", got)
	}
	for steps, more := 0, true; more; steps++ {
		var err error
		if more, err = p.Next(t.Context(), 2); err != nil {
			t.Fatalf("CachePass.Next: %v", err)
		}
		if steps > 10 {
			t.Fatal("the cache pass does not end")
		}
	}
	if p.Answered() != 3 {
		t.Errorf("answered %d, want 3 (lines 1, 2 and 7; 3 was claimed first)", p.Answered())
	}
	want := []jobs.Status{jobs.StatusSucceeded, jobs.StatusSucceeded, jobs.StatusRunning, jobs.StatusRunning,
		jobs.StatusPending, jobs.StatusPending, jobs.StatusSucceeded, jobs.StatusPending}
	if got := statuses(t, st, b.ID); !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if got := mustStats(t, st, b.ID).Cached; got != 3 {
		t.Errorf("Stats.Cached = %d, want 3", got)
	}
}

// testCacheCancelledJobs: the results of a cancelled job still answer
// (they were paid for); a cancelled job's requests are not answered, not
// even those its run handed back after the cancel.
func testCacheCancelledJobs(t *testing.T, st jobs.Store) {
	a := mustImport(t, st, "a", []jobs.Request{keyed(1, "k1"), keyed(2, "k2")})
	mustRecord(t, st, answer(mustClaim(t, st, a.ID, 1)[0], "one", time.Second))
	if _, err := st.Cancel(t.Context(), a.ID); err != nil {
		t.Fatalf("Cancel(a): %v", err)
	}
	b := mustImport(t, st, "b", []jobs.Request{keyed(1, "k1")})
	if n := runPass(t, st, b.ID, 10); n != 1 {
		t.Errorf("pass over b answered %d, want 1 from the cancelled job's result", n)
	}
	c := mustImport(t, st, "c", []jobs.Request{keyed(1, "k1")})
	if err := st.Lock(t.Context(), c.ID, ownerA, live, alive); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	r := mustClaim(t, st, c.ID, 1)[0]
	if _, err := st.Cancel(t.Context(), c.ID); err != nil {
		t.Fatalf("Cancel(c): %v", err)
	}
	mustRecord(t, st, handBack(r))
	if n := runPass(t, st, c.ID, 10); n != 0 {
		t.Errorf("pass over the cancelled job answered %d, want 0", n)
	}
	if got, want := statuses(t, st, c.ID), []jobs.Status{jobs.StatusPending}; !slices.Equal(got, want) {
		t.Errorf("cancelled job's statuses = %v, want %v (a leftover)", got, want)
	}
}
