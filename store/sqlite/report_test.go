package sqlite

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// at moves an outcome's attempt to start at t0+start and last d.
func at(o jobs.Outcome, start, d time.Duration) jobs.Outcome {
	o.Attempt.StartedAt, o.Attempt.Duration = t0.Add(start), d
	return o
}

func TestReport(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "report", chatRequests(9))
	reqs := mustClaim(t, s, job.ID, 9)
	var batch []jobs.Outcome
	for i, r := range reqs[:6] { // end at 1s, 22s, 43s, 64s, 85s, 106s; latencies 1s to 6s
		d := time.Duration(i+1) * time.Second
		o := at(succeed(r), time.Duration(i)*20*time.Second, d)
		o.Result.Latency = d
		if i < 3 {
			o.Result.TTFT = time.Duration(i+1) * 100 * time.Millisecond
		}
		batch = append(batch, o)
	}
	f8, f9 := failPermanently(reqs[7]), failPermanently(reqs[8])
	f8.Failure.Message, f9.Failure.Message = "<b>bad</b>", "second"
	batch = append(batch, at(rateLimited(reqs[6], "slow down"), 110*time.Second, 10*time.Second),
		at(f8, 30*time.Second, 2*time.Second), at(f9, 40*time.Second, 0))
	mustRecord(t, s, batch...)

	got, err := s.Report(ctx, job.ID, jobs.ReportOptions{Buckets: 60, Bins: 24, Slowest: 4, Failed: 1})
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if got.Stats.Job.Name != "report" || got.Stats.Counts[jobs.StatusSucceeded] != 6 {
		t.Errorf("Stats = %+v, want the job's stats", got.Stats)
	}
	if !got.Start.Equal(t0) || !got.End.Equal(t0.Add(120*time.Second)) || !got.BucketStart.Equal(t0) || got.Bucket != 2*time.Second {
		t.Errorf("span %v to %v, buckets of %v from %v; want t0 to t0+2m, 2s from t0", got.Start, got.End, got.Bucket, got.BucketStart)
	}
	want := make([]int, 61)
	for _, i := range []int{0, 11, 21, 32, 42, 53} {
		want[i] = 1
	}
	if !slices.Equal(got.Completed, want) {
		t.Errorf("Completed = %v, want %v", got.Completed, want)
	}
	if len(got.Errors) != 2 || got.Errors[0].Class != jobs.ClassInvalidRequest || got.Errors[0].Total != 2 ||
		got.Errors[1].Class != jobs.ClassRateLimited || got.Errors[1].Total != 1 {
		t.Fatalf("Errors = %+v, want invalid_request 2, rate_limited 1", got.Errors)
	}
	if e := got.Errors[0].Counts; len(e) != 61 || e[16] != 1 || e[20] != 1 {
		t.Errorf("invalid_request counts = %v, want 1 in buckets 16 and 20", e)
	}
	if e := got.Errors[1].Counts; e[60] != 1 {
		t.Errorf("rate_limited counts = %v, want 1 in the last bucket", e)
	}
	if h := got.Latency; h.Count != 6 || h.P50 != 3*time.Second || h.Max != 6*time.Second || sumBins(h) != 6 {
		t.Errorf("Latency = %+v, want 6 values, p50 3s, max 6s", h)
	}
	if h := got.TTFT; h.Count != 3 || h.Min != 100*time.Millisecond || sumBins(h) != 3 {
		t.Errorf("TTFT = %+v, want the 3 streamed results", h)
	}
	var ids []string
	for _, r := range got.Slowest {
		ids = append(ids, r.CustomID)
	}
	if !slices.Equal(ids, []string{"req-6", "req-5", "req-4", "req-3"}) || got.Slowest[0].Latency != 6*time.Second {
		t.Errorf("Slowest = %+v, want req-6 to req-3, slowest first", got.Slowest)
	}
	if got.FailedTotal != 2 || len(got.Failed) != 1 {
		t.Fatalf("Failed = %+v of %d, want 1 of 2", got.Failed, got.FailedTotal)
	}
	if f := got.Failed[0]; f.CustomID != "req-8" || f.Failure.Class != jobs.ClassInvalidRequest ||
		f.Failure.StatusCode != 400 || f.Failure.Message != "<b>bad</b>" || f.Attempts != 1 {
		t.Errorf("Failed[0] = %+v, want req-8's last error", f)
	}
}

func sumBins(h jobs.Histogram) int {
	n := 0
	for _, b := range h.Bins {
		n += b.Count
	}
	return n
}

func TestReportEmptyAndMissing(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "fresh", chatRequests(2))
	got, err := s.Report(ctx, job.ID, jobs.DefaultReportOptions)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if !got.Start.IsZero() || got.Completed != nil || len(got.Errors) != 0 || got.Latency.Count != 0 ||
		got.TTFT.Count != 0 || len(got.Slowest) != 0 || len(got.Failed) != 0 || got.FailedTotal != 0 {
		t.Errorf("Report = %+v, want nothing drawn for a job without attempts", got)
	}
	if _, err := s.Report(ctx, 999, jobs.DefaultReportOptions); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Report(missing) error = %v, want ErrNotFound", err)
	}
}
