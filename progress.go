package main

// The progress of a live run on stderr: one plain log line every
// --log-interval when stderr is not a terminal (nohup, CI, a pipe), the
// same line redrawn in place at most once a second on a terminal. No
// colour is used, so NO_COLOR has nothing to turn off.

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/worker"
)

// rateWindow is the span the req/s and tok/s figures cover.
const rateWindow = time.Minute

// progressSample is what was done by a moment of the run.
type progressSample struct {
	at           time.Time
	done, tokens int64
}

// progressLine renders a run's progress. The figures come from the
// runner's counters, plus what the job had done before this run started.
type progressLine struct {
	name     string
	total    int64
	baseDone int64                 // requests final before this run
	baseUse  map[string]jobs.Usage // usage recorded before this run, per model
	prices   jobs.Prices
	samples  []progressSample // within rateWindow, oldest first
}

func newProgressLine(st jobs.Stats, prices jobs.Prices, start time.Time) *progressLine {
	c := st.Counts
	l := &progressLine{name: st.Job.Name, total: int64(st.Job.Total), prices: prices, baseUse: map[string]jobs.Usage{},
		baseDone: int64(c[jobs.StatusSucceeded] + c[jobs.StatusFailed] + c[jobs.StatusCancelled])}
	for _, m := range st.Models {
		l.baseUse[m.Model] = m.Usage
	}
	l.samples = []progressSample{{at: start}}
	return l
}

// line renders p, taken at now, and keeps it as a sample for the rates.
func (l *progressLine) line(p worker.Progress, now time.Time) string {
	done := l.baseDone + p.Succeeded + p.Failed
	cur := progressSample{at: now, done: p.Succeeded + p.Failed, tokens: p.Tokens}
	for len(l.samples) > 1 && now.Sub(l.samples[0].at) > rateWindow {
		l.samples = l.samples[1:]
	}
	var reqRate, tokRate float64
	if old := l.samples[0]; now.After(old.at) {
		secs := now.Sub(old.at).Seconds()
		reqRate, tokRate = float64(cur.done-old.done)/secs, float64(cur.tokens-old.tokens)/secs
	}
	l.samples = append(l.samples, cur)
	pct := 100.0
	if l.total > 0 {
		pct = 100 * float64(done) / float64(l.total)
	}
	s := fmt.Sprintf("llmbatch: job %s: %d/%d done (%.1f%%), %d failed, %d retrying, %.1f req/s and %.0f tok/s over the last minute, concurrency %d, ETA %s",
		l.name, done, l.total, pct, p.Failed, p.Retrying, reqRate, tokRate, p.State.Concurrency, eta(l.total-done, reqRate))
	if len(l.prices.ByModel) > 0 {
		s += ", cost " + l.cost(p.Usage)
	}
	return s
}

// eta is how long the remaining requests take at rate a second.
func eta(remaining int64, rate float64) string {
	switch {
	case remaining <= 0:
		return "0s"
	case rate <= 0:
		return "unknown"
	}
	d := time.Duration(float64(remaining) / rate * float64(time.Second)).Round(time.Second)
	if d == 0 {
		return "under 1s"
	}
	return d.String()
}

// cost is the job's cost so far: before this run and in it, "+ unknown"
// for the usage of models without a price.
func (l *progressLine) cost(run map[string]jobs.Usage) string {
	var sum float64
	unknown := false
	for _, byModel := range []map[string]jobs.Usage{l.baseUse, run} {
		for model, u := range byModel {
			c, ok := l.prices.Cost(model, u)
			sum += c
			unknown = unknown || (!ok && u.Known)
		}
	}
	s := l.prices.FormatCost(sum, true)
	if unknown {
		s += " + unknown"
	}
	return s
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// startProgress writes the run's progress to w until the returned function
// is called: a line every interval, or on a terminal the line redrawn in
// place every second. Stopping writes the final figures once more.
func startProgress(ctx context.Context, l *progressLine, runner *worker.Runner, interval time.Duration, w io.Writer) (stop func()) {
	term := isTerminal(w)
	if term {
		interval = time.Second
	}
	write := func() {
		s := l.line(runner.Progress(), time.Now())
		if term {
			fmt.Fprintf(w, "\r%s\x1b[K", s) // erase what a longer line left
			return
		}
		fmt.Fprintln(w, s)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				write()
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		write()
		if term {
			fmt.Fprintln(w)
		}
	}
}
