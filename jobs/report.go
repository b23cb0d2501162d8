package jobs

import (
	"context"
	"time"
)

// Reporter reads what `llmbatch report` draws of one job.
type Reporter interface {
	// Report returns the job's statistics with its series, histograms and
	// lists, or ErrNotFound when there is no job with that id.
	Report(ctx context.Context, jobID int64, opts ReportOptions) (Report, error)
}

// ReportOptions bound the size of a Report.
type ReportOptions struct {
	// Buckets is about how many time buckets the series have (at most
	// Buckets+1, since bucket edges are rounded to readable widths).
	Buckets int
	// Bins is about how many bins a histogram has, not counting the
	// overflow bin that collects the slowest percent.
	Bins int
	// Slowest is how many of the slowest results to list.
	Slowest int
	// Failed is how many failed requests to list; FailedTotal counts all.
	Failed int
}

// DefaultReportOptions are the bounds the report command uses.
var DefaultReportOptions = ReportOptions{Buckets: 60, Bins: 24, Slowest: 20, Failed: 200}

// Report is one job as the HTML report shows it. Every series and histogram
// comes from the attempts and results tables, so a report written during a
// run shows the run so far.
type Report struct {
	Stats Stats
	// Start is when the first attempt started and End when the last one
	// ended; both are zero when the job has no attempt yet.
	Start, End time.Time
	// BucketStart is Start rounded down to a whole Bucket; bucket i of every
	// series covers [BucketStart + i·Bucket, BucketStart + (i+1)·Bucket).
	BucketStart time.Time
	Bucket      time.Duration
	// Completed counts, per bucket, the attempts that ended with a result,
	// by the time they ended.
	Completed []int
	// Errors counts the failed attempts of each error class per bucket, by
	// the time they ended; the most frequent class first.
	Errors []ClassSeries
	// Latency is the histogram of the results' latencies; TTFT that of the
	// times to first token of the streamed ones (Count 0 when none was
	// streamed).
	Latency, TTFT Histogram
	// Slowest lists the slowest results, slowest first.
	Slowest []SlowRequest
	// Failed lists failed requests with their last error in input order, up
	// to ReportOptions.Failed of them; FailedTotal is how many failed.
	Failed      []FailedRequest
	FailedTotal int
}

// ClassSeries is how many failed attempts of one class ended in each time
// bucket.
type ClassSeries struct {
	Class  ErrorClass
	Total  int
	Counts []int
}

// Histogram counts durations in bins of equal width. When a few values lie
// far above the rest, the last bin is an overflow bin from the 99th
// percentile to the maximum, so that the tail does not squash the body.
type Histogram struct {
	Bins  []Bin
	Count int
	// Percentiles by nearest rank, and the extremes.
	Min, P50, P95, P99, Max time.Duration
}

// Bin is one bar of a Histogram: the values in [Lo, Hi), or [Lo, Hi] for
// the last bin.
type Bin struct {
	Lo, Hi   time.Duration
	Count    int
	Overflow bool
}

// SlowRequest is one of the slowest results.
type SlowRequest struct {
	CustomID string
	// Model is the model the request asked for.
	Model    string
	Latency  time.Duration
	TTFT     time.Duration
	Usage    Usage
	Attempts int
}

// FailedRequest is a failed request with its last error.
type FailedRequest struct {
	CustomID string
	Model    string
	Attempts int
	// Failure is the last error; its Body is left out.
	Failure Failure
}
