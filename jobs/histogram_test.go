package jobs

import (
	"slices"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// bin is a regular histogram bin from lo to hi milliseconds.
func bin(lo, hi, count int) Bin { return Bin{Lo: ms(lo), Hi: ms(hi), Count: count} }

func TestHistogram(t *testing.T) {
	uniform := make([]time.Duration, 100) // 1ms to 100ms
	for i := range uniform {
		uniform[i] = ms(i + 1)
	}
	tail := make([]time.Duration, 100) // 99 values of 10ms to 108ms, then 10s
	for i := range tail[:99] {
		tail[i] = ms(10 + i)
	}
	tail[99] = 10 * time.Second
	tests := []struct {
		name   string
		values []time.Duration
		bins   int
		want   []Bin
	}{
		{"Empty", nil, 10, nil},
		{"One", []time.Duration{ms(1234)}, 10, []Bin{{Lo: ms(1234), Hi: ms(1235), Count: 1}}},
		{"AllEqual", []time.Duration{ms(7), ms(7), ms(7)}, 10, []Bin{{Lo: ms(7), Hi: ms(8), Count: 3}}},
		// 10ms bins from 0; 100ms, on the top edge, counts in the last bin.
		{"Uniform", uniform, 10, []Bin{bin(0, 10, 9), bin(10, 20, 10), bin(20, 30, 10), bin(30, 40, 10),
			bin(40, 50, 10), bin(50, 60, 10), bin(60, 70, 10), bin(70, 80, 10), bin(80, 90, 10), bin(90, 100, 11)}},
		// The p99 (108ms) is near the rest, 10s is not: it goes in an overflow
		// bin from the end of the regular bins.
		{"Tail", tail, 2, []Bin{bin(0, 50, 40), bin(50, 100, 50), bin(100, 150, 9),
			{Lo: ms(150), Hi: 10 * time.Second, Count: 1, Overflow: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistogram(tt.values, tt.bins)
			if h.Count != len(tt.values) || !slices.Equal(h.Bins, tt.want) {
				t.Errorf("histogram = %d values in %+v, want %d in %+v", h.Count, h.Bins, len(tt.values), tt.want)
			}
		})
	}
	if h := NewHistogram(uniform, 10); h.P50 != ms(50) || h.P95 != ms(95) || h.P99 != ms(99) || h.Min != ms(1) || h.Max != ms(100) {
		t.Errorf("percentiles = %+v, want p50 50ms, p95 95ms, p99 99ms, 1ms to 100ms", h)
	}
}

func TestNiceStep(t *testing.T) {
	tests := []struct{ d, want time.Duration }{
		{0, time.Millisecond},
		{1500 * time.Millisecond, 2 * time.Second},
		{61 * time.Second / 60, 2 * time.Second},
		{12 * time.Second, 15 * time.Second},
		{72 * time.Minute, 2 * time.Hour},
		{40 * time.Hour, 48 * time.Hour},
	}
	for _, tt := range tests {
		if got := niceStep(tt.d, timeSteps); got != tt.want {
			t.Errorf("niceStep(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}
