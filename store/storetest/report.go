package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// testReport: the report's series, histograms and lists come from the
// attempts and results recorded, within the bounds asked for.
func testReport(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "report", chats(6))
	reqs := mustClaim(t, st, job.ID, 6)
	ms := time.Millisecond
	mustRecord(t, st,
		timed(answer(reqs[0], "a", 100*ms), t0, 100*ms),
		timed(answer(reqs[1], "b", 200*ms), t0.Add(10*time.Second), 200*ms),
		timed(answer(reqs[2], "c", 300*ms), t0.Add(20*time.Second), 300*ms),
		timed(failPermanently(reqs[3], "bad d"), t0.Add(5*time.Second), 0),
		timed(failPermanently(reqs[4], "bad e"), t0.Add(30*time.Second), time.Second),
		timed(rateLimited(reqs[5], "slow", time.Time{}), t0.Add(15*time.Second), 0))
	opts := jobs.ReportOptions{Buckets: 10, Bins: 5, Slowest: 2, Failed: 1}
	rep, err := st.Report(t.Context(), job.ID, opts)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if rep.Stats.Job.ID != job.ID || rep.Stats.Counts[jobs.StatusSucceeded] != 3 || rep.Stats.Attempts != 6 {
		t.Errorf("Report.Stats = job %d, %v, %d attempts; want job %d, 3 succeeded, 6 attempts",
			rep.Stats.Job.ID, rep.Stats.Counts, rep.Stats.Attempts, job.ID)
	}
	checkReportSeries(t, rep, opts, t0, t0.Add(31*time.Second))
	if h := rep.Latency; h.Count != 3 || h.Min != 100*ms || h.P50 != 200*ms || h.Max != 300*ms || binned(h) != 3 {
		t.Errorf("Latency = %+v, want 3 results from 100ms to 300ms, p50 200ms, all binned", h)
	}
	if h := rep.TTFT; h.Count != 3 || h.P50 != 90*ms {
		t.Errorf("TTFT = %+v, want 3 of 90ms", h)
	}
	if got := rep.Slowest; len(got) != 2 || got[0].CustomID != "req-3" || got[0].Latency != 300*ms ||
		got[1].CustomID != "req-2" || got[0].Model != "m-v3" || got[0].Attempts != 1 || got[0].Usage.TotalTokens != 15 {
		t.Errorf("Slowest = %+v, want req-3 (300ms, 15 tokens) then req-2", got)
	}
	if got := rep.Failed; rep.FailedTotal != 2 || len(got) != 1 || got[0].CustomID != "req-4" ||
		got[0].Failure.Class != jobs.ClassInvalidRequest || got[0].Failure.StatusCode != 400 || got[0].Failure.Message != "bad d" {
		t.Errorf("Failed = %+v of %d, want req-4's 400 \"bad d\" of 2", got, rep.FailedTotal)
	}
	if _, err := st.Report(t.Context(), job.ID+1000, opts); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Report(missing job) = %v, want ErrNotFound", err)
	}
}

// checkReportSeries checks the span and the per-bucket counts: 3 completed
// attempts, 2 invalid_request and 1 rate_limited failures, in at most
// Buckets+1 buckets that start at or before the first attempt.
func checkReportSeries(t *testing.T, rep jobs.Report, opts jobs.ReportOptions, start, end time.Time) {
	t.Helper()
	if !rep.Start.Equal(start) || !rep.End.Equal(end) {
		t.Errorf("span %v to %v, want %v to %v", rep.Start, rep.End, start, end)
	}
	if rep.Bucket <= 0 || rep.BucketStart.After(rep.Start) || len(rep.Completed) == 0 || len(rep.Completed) > opts.Buckets+1 ||
		rep.BucketStart.Add(time.Duration(len(rep.Completed))*rep.Bucket).Before(rep.End) {
		t.Fatalf("buckets of %v from %v, %d of them; want at most %d covering %v to %v",
			rep.Bucket, rep.BucketStart, len(rep.Completed), opts.Buckets+1, rep.Start, rep.End)
	}
	if got := sum(rep.Completed); got != 3 {
		t.Errorf("Completed = %v, %d in all; want 3", rep.Completed, got)
	}
	want := []jobs.ClassSeries{{Class: jobs.ClassInvalidRequest, Total: 2}, {Class: jobs.ClassRateLimited, Total: 1}}
	if len(rep.Errors) != len(want) {
		t.Fatalf("Errors = %+v, want %d classes", rep.Errors, len(want))
	}
	for i, w := range want {
		if e := rep.Errors[i]; e.Class != w.Class || e.Total != w.Total || sum(e.Counts) != w.Total ||
			len(e.Counts) != len(rep.Completed) {
			t.Errorf("Errors[%d] = %+v, want %s × %d over %d buckets", i, e, w.Class, w.Total, len(rep.Completed))
		}
	}
}

func sum(counts []int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// binned counts the values in a histogram's bins.
func binned(h jobs.Histogram) int {
	n := 0
	for _, b := range h.Bins {
		n += b.Count
	}
	return n
}
