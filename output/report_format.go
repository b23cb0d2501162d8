package output

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// groupDigits writes n with thousands separators: 1234567 is "1,234,567".
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// countOf is n with thousands separators followed by word, with an "s"
// unless n is one: "1 request", "1,234 requests".
func countOf(n int64, word string) string {
	s := groupDigits(n) + " " + word
	if n != 1 {
		s += "s"
	}
	return s
}

// compactNumber writes axis labels: 950, 1.2k, 34k, 1.5M.
func compactNumber(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return trimZero(v/1e9) + "G"
	case a >= 1e6:
		return trimZero(v/1e6) + "M"
	case a >= 1e3:
		return trimZero(v/1e3) + "k"
	default:
		return trimZero(v)
	}
}

func trimZero(v float64) string {
	if v >= 100 || v == math.Trunc(v) {
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	}
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// shortDuration writes a duration the way people say it: 850ms, 1.25s,
// 12.3s, 4m05s, 2h03m.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 10*time.Second:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", d.Seconds()), "0"), ".") + "s"
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// durationOrDash writes "–" for a duration not measured.
func durationOrDash(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return shortDuration(d)
}

// clockLayout is how the time axis labels a bucket edge: finer buckets need
// finer labels, and a span over a day needs the date.
func clockLayout(bucket, span time.Duration) string {
	switch {
	case span >= 24*time.Hour:
		return "Jan 2 15:04"
	case bucket < time.Second:
		return "15:04:05.000"
	case bucket < time.Minute:
		return "15:04:05"
	default:
		return "15:04"
	}
}

// rate writes n events over d as a rate per second, or per minute or per
// hour when that reads better.
func rate(n int, d time.Duration) string {
	if n == 0 || d <= 0 {
		return "–"
	}
	perSec := float64(n) / d.Seconds()
	switch {
	case perSec >= 1:
		return trimZero(perSec) + "/s"
	case perSec*60 >= 1:
		return trimZero(perSec*60) + "/min"
	default:
		return trimZero(perSec*3600) + "/h"
	}
}

// clip cuts s to at most n runes, marking the cut with "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}

func percent(part, whole int) string {
	if whole == 0 {
		return "0%"
	}
	p := 100 * float64(part) / float64(whole)
	if p > 0 && p < 0.1 {
		return "<0.1%"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}
