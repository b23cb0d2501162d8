package jobs

import (
	"sort"
	"time"
)

// The report's histograms and time buckets, which every engine computes
// the same way from the durations it reads.

// timeSteps are the bucket widths of the report's time series: widths a
// reader can count in on a clock.
var timeSteps = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// niceStep returns the smallest of steps that is at least d, or beyond the
// last step a whole multiple of it.
func niceStep(d time.Duration, steps []time.Duration) time.Duration {
	for _, s := range steps {
		if s >= d {
			return s
		}
	}
	last := steps[len(steps)-1]
	return (d + last - 1) / last * last
}

// niceWidth returns the smallest 1, 2 or 5 times a power of ten
// milliseconds that is at least d: the bin widths of the histograms.
func niceWidth(d time.Duration) time.Duration {
	for w := time.Millisecond; ; w *= 10 {
		for _, m := range []time.Duration{1, 2, 5} {
			if m*w >= d {
				return m * w
			}
		}
	}
}

// NewHistogram bins sorted durations into about bins bins of a round width.
// When the slowest percent reaches more than twice as far above the
// minimum as the 99th percentile, the bins end after the 99th percentile
// and the values beyond go into one overflow bin up to the maximum.
func NewHistogram(sorted []time.Duration, bins int) Histogram {
	h := Histogram{Count: len(sorted)}
	if len(sorted) == 0 {
		return h
	}
	h.Min, h.Max = sorted[0], sorted[len(sorted)-1]
	h.P50, h.P95, h.P99 = NearestRank(sorted, 50), NearestRank(sorted, 95), NearestRank(sorted, 99)
	hi := h.Max
	if h.P99 > h.Min && h.Max-h.Min > 2*(h.P99-h.Min) {
		hi = h.P99
	}
	width := niceWidth((hi - h.Min) / time.Duration(max(bins, 1)))
	lo := h.Min.Truncate(width)
	// A value on the top edge counts in the last bin, which is [Lo, Hi].
	n := max(1, int((hi-lo+width-1)/width))
	edge := lo + time.Duration(n)*width
	for i := range n {
		h.Bins = append(h.Bins, Bin{Lo: lo + time.Duration(i)*width, Hi: lo + time.Duration(i+1)*width})
	}
	if h.Max > hi && h.Max >= edge {
		h.Bins = append(h.Bins, Bin{Lo: edge, Hi: h.Max, Overflow: true})
	}
	for _, v := range sorted {
		if v > hi && v >= edge {
			h.Bins[len(h.Bins)-1].Count++
			continue
		}
		h.Bins[min(int((v-lo)/width), n-1)].Count++
	}
	return h
}

// NearestRank returns the pct-th percentile of sorted values: the value of
// rank ceil(pct·n/100), as Stats computes it.
func NearestRank(sorted []time.Duration, pct int) time.Duration {
	i := (pct*len(sorted)+99)/100 - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// ReportBucket is the width of the report's time-series buckets for a run
// of span in about n buckets: a width a reader can count in on a clock.
func ReportBucket(span time.Duration, n int) time.Duration {
	return niceStep(span/time.Duration(max(n, 1)), timeSteps)
}

// Series adds up the report's time series as an engine reads it: the
// attempts that ended in each bucket, and those that failed by error class.
type Series struct {
	completed []int
	byClass   map[string][]int
}

// NewSeries returns a series of n buckets.
func NewSeries(n int) *Series {
	return &Series{completed: make([]int, n), byClass: map[string][]int{}}
}

// Add counts count attempts of class ("" for a success) that ended in
// bucket, which is clamped to the series.
func (s *Series) Add(class string, bucket int64, count int) {
	counts := s.completed
	if class != "" {
		if s.byClass[class] == nil {
			s.byClass[class] = make([]int, len(s.completed))
		}
		counts = s.byClass[class]
	}
	counts[max(0, min(int(bucket), len(counts)-1))] += count
}

// Fill sets rep's Completed and Errors (most frequent class first).
func (s *Series) Fill(rep *Report) {
	rep.Completed = s.completed
	list := make([]ClassSeries, 0, len(s.byClass))
	for class, counts := range s.byClass {
		cs := ClassSeries{Class: ErrorClass(class), Counts: counts}
		for _, c := range counts {
			cs.Total += c
		}
		list = append(list, cs)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Total != list[j].Total {
			return list[i].Total > list[j].Total
		}
		return list[i].Class < list[j].Class
	})
	rep.Errors = list
}
