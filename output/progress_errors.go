package output

// Errors as they happen, beside the progress of a live run: the first
// failure of each error class at once, then every --log-interval a count
// per class of the failures since the last count, each with an example.
// They are read from the runner's tallies (jobs.Progress.Errors), diffed
// between snapshots, and written as messages, above the bar while it is
// drawn. run --verbose adds a line for every failed attempt (AttemptLog).

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/llmbatch/llmbatch/jobs"
)

// Messages are cut so that a line stays readable: the provider's message
// to shortMessage runes in the first and count lines, to longMessage in
// the --verbose lines, which are for looking closely.
const (
	shortMessage = 100
	longMessage  = 1000
)

// errorReport turns the error tallies of successive snapshots of a run
// into lines. Not safe for concurrent use.
type errorReport struct {
	name string
	// shown holds the classes whose first failure is printed; counted
	// the counts at the last count report, made at since.
	shown   map[jobs.ErrorClass]bool
	counted map[jobs.ErrorClass]int64
	since   time.Time
}

func newErrorReport(name string, start time.Time) *errorReport {
	return &errorReport{name: name, shown: map[jobs.ErrorClass]bool{}, counted: map[jobs.ErrorClass]int64{}, since: start}
}

// firsts returns a line for each class p holds a failure of that no
// line was returned for yet, with the first failure of that class:
//
//	llmbatch: job chat: 429 rate_limited: Rate limit reached for requests…
func (e *errorReport) firsts(p jobs.Progress) []string {
	var lines []string
	for _, class := range sortedClasses(p.Errors) {
		if t := p.Errors[class]; t.Count > 0 && !e.shown[class] {
			e.shown[class] = true
			lines = append(lines, fmt.Sprintf("llmbatch: job %s: %s%s", e.name, failureHead(t.First), failureMessage(t.First, shortMessage)))
		}
	}
	return lines
}

// counts returns, for each class that failed since the last count (the
// start before the first), how many times, with the latest failure:
//
//	llmbatch: job chat: 429 rate_limited ×37 in the last 30s: Rate limit reached…
//
// A class whose one failure so far the first line showed gets no count.
func (e *errorReport) counts(p jobs.Progress, now time.Time) []string {
	span := max(now.Sub(e.since).Round(time.Second), time.Second)
	var lines []string
	for _, class := range sortedClasses(p.Errors) {
		t := p.Errors[class]
		n := t.Count - e.counted[class]
		if n <= 0 || (t.Count == 1 && e.shown[class]) {
			e.counted[class] = t.Count
			continue
		}
		e.counted[class] = t.Count
		lines = append(lines, fmt.Sprintf("llmbatch: job %s: %s ×%d in the last %s%s",
			e.name, failureHead(t.Last), n, span, failureMessage(t.Last, shortMessage)))
	}
	e.since = now
	return lines
}

func sortedClasses(m map[jobs.ErrorClass]jobs.ErrorTally) []jobs.ErrorClass {
	classes := make([]jobs.ErrorClass, 0, len(m))
	for c := range m {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	return classes
}

// failureHead is the status code of f, where there is one, and its class:
// "429 rate_limited", "network".
func failureHead(f jobs.Failure) string {
	if f.StatusCode == 0 {
		return string(f.Class)
	}
	return strconv.Itoa(f.StatusCode) + " " + string(f.Class)
}

// failureMessage is ": " and f's message on one line, cut to n runes; ""
// when it has none.
func failureMessage(f jobs.Failure, n int) string {
	m := oneLine(f.Message)
	if m == "" {
		return ""
	}
	return ": " + cutText(m, n)
}

// oneLine makes s one line of plain text: a server's message may hold
// new lines, and escape codes that would drive the terminal.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)), " ")
}

// AttemptLine is run --verbose's line for an attempt that failed, at now,
// with what becomes of its request:
//
//	llmbatch: job chat: req-17 attempt 2: 429 rate_limited: Rate limit reached… (retry in 1.5s)
func AttemptLine(job string, o jobs.Outcome, now time.Time) string {
	var f jobs.Failure
	if o.Failure != nil {
		f = *o.Failure
	}
	n := o.Request.Attempts + 1
	if o.Attempt != nil {
		n = o.Attempt.Number
	}
	return fmt.Sprintf("llmbatch: job %s: %s attempt %d: %s%s (%s)", job, cutText(oneLine(o.Request.CustomID), shortMessage), n,
		failureHead(f), failureMessage(f, longMessage), nextStep(o, f.Class, now))
}

// nextStep says what becomes of the request of a failed attempt.
func nextStep(o jobs.Outcome, class jobs.ErrorClass, now time.Time) string {
	switch {
	case o.Next == jobs.StatusFailed:
		return "failed"
	case class.Disposition() == jobs.Fatal:
		return "the run stops; the request stays pending"
	case !o.CountAttempt:
		return "not counted: the run waits for the endpoint to answer"
	}
	d := o.NotBefore.Sub(now)
	switch {
	case d <= 0:
		return "retry now"
	case d < 10*time.Second:
		return "retry in " + d.Round(100*time.Millisecond).String()
	}
	return "retry in " + d.Round(time.Second).String()
}

// AttemptLog writes AttemptLine for each failed attempt it is given, in
// order, from a goroutine of its own: a worker that adds one waits for
// room in a queue, not for the terminal.
type AttemptLog struct {
	job   string
	now   func() time.Time
	lines chan string
	done  chan struct{}
}

// attemptQueue is how many lines may wait to be written before Add waits.
const attemptQueue = 1024

// NewAttemptLog starts writing the lines to w, until Close.
func NewAttemptLog(w io.Writer, job string) *AttemptLog {
	l := &AttemptLog{job: job, now: time.Now, lines: make(chan string, attemptQueue), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for line := range l.lines {
			fmt.Fprintln(w, line)
		}
	}()
	return l
}

// Add queues the line of a failed attempt. It keeps nothing of o. Safe
// for concurrent use, until Close.
func (l *AttemptLog) Add(o jobs.Outcome) { l.lines <- AttemptLine(l.job, o, l.now()) }

// Close writes the lines queued and stops. Add must not be called after.
func (l *AttemptLog) Close() {
	close(l.lines)
	<-l.done
}
