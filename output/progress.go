package output

// The progress of a live run on stderr. On a terminal, a bar drawn by
// github.com/vbauerster/mpb/v8 with the figures on a second line, redrawn
// every second and fitted to the terminal's width; off a terminal (nohup,
// CI, a pipe) or on one that reports no size, one plain log line with the
// same figures every --log-interval. Both end with the final figures, and
// both say why dispatch is paused during an outage. Both tell the errors as
// they happen (progress_errors.go). --quiet shows none of it; NO_COLOR
// takes the colour out of the bar.

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// rateWindow is the span the req/s and tok/s figures cover, and
// sampleEvery the spacing of the samples they are computed from.
const (
	rateWindow  = time.Minute
	sampleEvery = time.Second
)

// progressSample is what this run had done by a moment.
type progressSample struct {
	at           time.Time
	done, tokens int64
}

// progressFigures are what the bar and the log line show.
type progressFigures struct {
	Name        string
	Done, Total int64 // requests final (succeeded, failed or cancelled), over all runs
	Percent     float64
	// Failed counts the job's failed requests, over all runs. Retrying
	// counts the requests this run put back to pending after a retryable
	// error and has not finished since (waiting out their backoff or sent
	// again).
	Failed, Retrying int64
	// ReqRate and TokRate are requests finished and tokens reported a
	// second over the last minute (since the start in the first minute).
	ReqRate, TokRate float64
	ETA              string
	// Concurrency is the adaptive controller's limit now, of MaxConcurrency.
	Concurrency, MaxConcurrency int
	// Cost is the job's cost so far, "" without prices.
	Cost string
	// Outage, when not empty, is why the run stopped dispatching as a
	// whole, for OutageFor; it probes the endpoint next in NextProbeIn
	// (zero when it does not say).
	Outage                 string
	OutageFor, NextProbeIn time.Duration
}

// ProgressMeter turns a runner's counters, plus what the job had done
// before this run, into progressFigures. Not safe for concurrent use.
type ProgressMeter struct {
	name                 string
	total                int64
	baseDone, baseFailed int64                      // before this run
	baseUse              map[string]jobs.ModelUsage // usage recorded before this run, per model
	prices               jobs.Prices
	samples              []progressSample // at most one a sampleEvery, within rateWindow, oldest first
}

func NewProgressMeter(st jobs.Stats, prices jobs.Prices, start time.Time) *ProgressMeter {
	c := st.Counts
	m := &ProgressMeter{name: st.Job.Name, total: int64(st.Job.Total), prices: prices, baseUse: map[string]jobs.ModelUsage{},
		baseDone:   int64(c[jobs.StatusSucceeded] + c[jobs.StatusFailed] + c[jobs.StatusCancelled]),
		baseFailed: int64(c[jobs.StatusFailed])}
	for _, u := range st.Models {
		m.baseUse[u.Model] = u
	}
	m.samples = []progressSample{{at: start}}
	return m
}

// begin makes p, taken at now, the first sample. The display starts
// after the job's usage is summed, beside a run already sending: what the
// runner finished before is counted as done, but is no part of the rates.
func (m *ProgressMeter) begin(p jobs.Progress, now time.Time) {
	m.samples = []progressSample{{at: now, done: p.Succeeded + p.Failed, tokens: p.Tokens}}
}

// measure computes the figures of p, taken at now, and keeps it as a
// sample when the last is a sampleEvery old, so the rates slide over
// per-second samples however often it is called.
func (m *ProgressMeter) measure(p jobs.Progress, now time.Time) progressFigures {
	cur := progressSample{at: now, done: p.Succeeded + p.Failed, tokens: p.Tokens}
	for len(m.samples) > 1 && now.Sub(m.samples[0].at) > rateWindow {
		m.samples = m.samples[1:]
	}
	f := progressFigures{Name: m.name, Done: m.baseDone + cur.done, Total: m.total, Percent: 100,
		Failed: m.baseFailed + p.Failed, Retrying: p.Retrying,
		Concurrency: p.State.Concurrency, MaxConcurrency: p.State.MaxConcurrency}
	if old := m.samples[0]; now.After(old.at) {
		secs := now.Sub(old.at).Seconds()
		f.ReqRate, f.TokRate = float64(cur.done-old.done)/secs, float64(cur.tokens-old.tokens)/secs
	}
	if now.Sub(m.samples[len(m.samples)-1].at) >= sampleEvery {
		m.samples = append(m.samples, cur)
	}
	if f.Total > 0 {
		f.Percent = 100 * float64(f.Done) / float64(f.Total)
	}
	f.ETA = eta(f.Total-f.Done, f.ReqRate)
	if len(m.prices.ByModel) > 0 {
		f.Cost = m.cost(p)
	}
	if st := p.State; st.Outage != "" {
		f.Outage = st.Outage
		if !st.OutageSince.IsZero() {
			f.OutageFor = max(now.Sub(st.OutageSince), 0).Round(time.Second)
		}
		if !st.NextProbe.IsZero() {
			f.NextProbeIn = max(st.NextProbe.Sub(now), 0).Round(time.Second)
		}
	}
	return f
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
func (m *ProgressMeter) cost(p jobs.Progress) string {
	var sum float64
	unknown := false
	add := func(mu jobs.ModelUsage) {
		c, ok := m.prices.ModelCost(mu)
		sum += c
		unknown = unknown || (!ok && mu.Usage.Known)
	}
	for _, mu := range m.baseUse {
		add(mu)
	}
	for model, u := range p.Usage {
		mu := jobs.ModelUsage{Model: model, Usage: u}
		if b, ok := p.BatchUsage[model]; ok {
			mu.BatchUsage, mu.BatchResults = b, 1
		}
		add(mu)
	}
	s := m.prices.FormatCost(sum, true)
	if unknown {
		s += " + unknown"
	}
	return s
}

// logLine is the figures as one plain line, for logs, with why dispatch is
// paused at the end.
func (f progressFigures) logLine() string {
	s := fmt.Sprintf("llmbatch: job %s: %d/%d done (%.1f%%), %d failed, %d retrying, %.1f req/s and %.0f tok/s over the last minute",
		f.Name, f.Done, f.Total, f.Percent, f.Failed, f.Retrying, f.ReqRate, f.TokRate)
	if f.MaxConcurrency > 0 { // none in batch mode: the provider sends
		s += fmt.Sprintf(", concurrency %d/%d", f.Concurrency, f.MaxConcurrency)
	}
	s += ", ETA " + f.ETA
	if f.Cost != "" {
		s += ", cost " + f.Cost
	}
	if f.Outage != "" {
		s += "; " + f.pause(f.Outage)
	}
	return s
}

// pause says why dispatch is paused, with reason standing for f.Outage
// (the bar cuts it to fit):
//
//	paused: 127.0.0.1:1 unreachable (connection refused) for 2m10s; next probe in 40s
func (f progressFigures) pause(reason string) string {
	return "paused: " + reason + f.pauseTiming()
}

// pauseTiming is the end of pause: how long, and when the next probe is.
func (f progressFigures) pauseTiming() string {
	s := ""
	if f.OutageFor > 0 {
		s += " for " + f.OutageFor.String()
	}
	switch {
	case f.NextProbeIn > 0:
		s += "; next probe in " + f.NextProbeIn.String()
	case f.Outage != "":
		s += "; probing"
	}
	return s
}

// ProgressOptions say how the progress is shown.
type ProgressOptions struct {
	// LogInterval is how often a line is logged off a terminal, and how
	// often the failures since the last count are counted.
	LogInterval time.Duration
	// NoColor takes the colour out of the bar ($NO_COLOR).
	NoColor bool
	// Messages, if not nil, is where the run writes its messages (a
	// signal's notice); while the bar is drawn they go through it.
	Messages *MessageWriter
}

// MessageWriter is stderr for the messages a run writes while its
// progress may be drawn: while a bar is, through the bar, which prints them
// above itself at its next frame (a message written straight to the
// terminal would leave a torn copy of the bar behind); else stderr itself.
type MessageWriter struct {
	mu  sync.Mutex
	w   io.Writer
	bar *progressBar
}

// NewMessageWriter returns a MessageWriter to w.
func NewMessageWriter(w io.Writer) *MessageWriter { return &MessageWriter{w: w} }

func (m *MessageWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bar != nil {
		n, err := m.bar.p.Write(p)
		m.bar.redraw()
		return n, err
	}
	return m.w.Write(p)
}

// attach routes the messages through bar, until it is detached (nil).
func (m *MessageWriter) attach(bar *progressBar) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.bar = bar
	m.mu.Unlock()
}

// terminalWriter is a writer that says whether it is a terminal, so that
// a wrapped stderr (or a test's buffer) can ask for the bar.
type terminalWriter interface {
	io.Writer
	IsTerminal() bool
}

// IsTerminal reports whether w is a terminal: a character device, or a
// terminalWriter that says so. (/dev/null is a character device too; it
// gets frames nobody reads, which is harmless.)
func IsTerminal(w io.Writer) bool {
	if tw, ok := w.(terminalWriter); ok {
		return tw.IsTerminal()
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// terminalSizer is a terminalWriter that says its size, so that a test's
// buffer can play a terminal of any width (or of none).
type terminalSizer interface {
	terminalWriter
	TerminalSize() (width, height int)
}

// barWidth says whether the bar can be drawn on w, and at which width: 0
// for a terminal device, whose width the bar reads at each frame. A
// terminal that reports a size of 0×0 (script(1), some CI ttys) would get
// a bar of no width: it gets the log lines instead, as does a character
// device that is no terminal (/dev/null).
func barWidth(w io.Writer) (int, bool) {
	if ts, ok := w.(terminalSizer); ok {
		width, _ := ts.TerminalSize()
		return width, ts.IsTerminal() && width > 0
	}
	f, ok := w.(*os.File)
	if !ok {
		return terminalWidth, IsTerminal(w)
	}
	cw := cupwriter.New(f, false) // what the bar measures the terminal with
	if !cw.IsTerminal() {
		return 0, false
	}
	width, _, err := cw.GetTermSize()
	return 0, err == nil && width > 0
}

// StartProgress shows the run's progress on w until the returned function
// is called: on a terminal a bar redrawn every second, else a log line
// every o.LogInterval. snap reads the runner's counters (Runner.Progress).
// Beside it, the first failure of each error class is told within a
// second, and every o.LogInterval (on a terminal too) how many failures
// of each class there were since (progress_errors.go). Stopping tells the
// failures not yet told, then shows the final figures once more.
func StartProgress(ctx context.Context, m *ProgressMeter, snap func() jobs.Progress, o ProgressOptions, w io.Writer) (stop func()) {
	first, now := snap(), time.Now()
	m.begin(first, now)
	var bar *progressBar
	if width, ok := barWidth(w); ok {
		bar = newProgressBar(m.name, m.total, o.NoColor, w, width)
		bar.show(m.measure(first, now)) // the bar from the start, at 0 if new
		o.Messages.attach(bar)
	}
	errs := newErrorReport(m.name, now)
	var msgs io.Writer = w
	if o.Messages != nil {
		msgs = o.Messages // above the bar while it is drawn
	}
	say := func(lines []string) {
		for _, l := range lines {
			fmt.Fprintln(msgs, l)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sample := time.NewTicker(sampleEvery)
		defer sample.Stop()
		logTick := time.NewTicker(o.LogInterval)
		defer logTick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-sample.C:
				p := snap()
				if f := m.measure(p, now); bar != nil {
					bar.show(f)
				}
				say(errs.firsts(p))
			case now := <-logTick.C:
				p := snap()
				say(errs.firsts(p))
				say(errs.counts(p, now))
				if f := m.measure(p, now); bar == nil {
					fmt.Fprintln(w, f.logLine())
				}
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		p, now := snap(), time.Now()
		say(errs.firsts(p))
		say(errs.counts(p, now))
		f := m.measure(p, now)
		if bar != nil {
			o.Messages.attach(nil) // a finished bar prints nothing more
			bar.finish(f)
			return
		}
		fmt.Fprintln(w, f.logLine())
	}
}

// progressBar is the terminal display: the job's name, a bar, done/total,
// percent and ETA on one line, the other figures on the next.
type progressBar struct {
	p       *mpb.Progress
	bar     *mpb.Bar
	refresh chan any // a render each time the figures change
	noColor bool
	mu      sync.Mutex
	fig     progressFigures
}

// ANSI colours of the bar, unless NO_COLOR.
const (
	colorGreen  = "\x1b[32m"
	colorRed    = "\x1b[31m"
	colorYellow = "\x1b[33m"
	colorReset  = "\x1b[0m"
)

// terminalWidth is the width drawn to a writer that says it is a terminal
// but is no terminal device and tells no size.
const terminalWidth = 160

// maxBarName is how many columns of the job's name the bar shows, so that
// a long name leaves the figures after the bar room in 80 columns.
const maxBarName = 24

// newProgressBar draws the bar on w: a terminal device, whose width it reads
// at each frame, or a writer that says it is a terminal, drawn at width.
func newProgressBar(name string, total int64, noColor bool, w io.Writer, width int) *progressBar {
	b := &progressBar{refresh: make(chan any, 1), noColor: noColor,
		fig: progressFigures{Name: name, Total: total, ETA: "unknown"}}
	opts := []mpb.ContainerOption{mpb.WithOutput(w), mpb.WithManualRefresh(b.refresh)}
	if _, ok := w.(*os.File); !ok {
		opts = append(opts, mpb.ForceTTY(), mpb.WithWidth(width))
	}
	b.p = mpb.New(opts...)
	green := func(s string) string { return b.paint(colorGreen, s) }
	style := mpb.BarStyle().FillerMeta(green).TipMeta(green)
	// Created with no total, the bar never completes by itself: the run
	// decides when it is over (finish). Its total is shown all the same.
	b.bar = b.p.New(0, style, mpb.BarWidth(40),
		mpb.PrependDecorators(decor.Name(cutText(name, maxBarName))),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return b.figures().barLine() })),
		mpb.BarBtmExtender(mpb.BarFillerFunc(b.fillStats)))
	b.bar.SetTotal(total, false)
	return b
}

// show makes f the figures drawn and draws them.
func (b *progressBar) show(f progressFigures) {
	b.set(f)
	b.redraw()
}

// redraw asks for a frame.
func (b *progressBar) redraw() {
	select {
	case b.refresh <- nil:
	default: // a render is pending; it will draw the latest
	}
}

func (b *progressBar) set(f progressFigures) {
	b.mu.Lock()
	b.fig = f
	b.mu.Unlock()
	b.bar.SetCurrent(f.Done)
}

// finish draws f as the last frame and waits until it is written: ending
// the bar renders it once more.
func (b *progressBar) finish(f progressFigures) {
	b.set(f)
	if f.Done >= f.Total {
		b.bar.SetTotal(-1, true) // complete at f.Done
	} else {
		b.bar.Abort(false) // the run stopped early; the frame stays
	}
	b.p.Wait()
}

func (b *progressBar) figures() progressFigures {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fig
}

func (b *progressBar) paint(color, s string) string {
	if b.noColor || color == "" || s == "" {
		return s
	}
	return color + s + colorReset
}

// barLine is what follows the bar: the ETA, or that dispatch is paused.
func (f progressFigures) barLine() string {
	s := fmt.Sprintf("%d/%d %.1f%% ", f.Done, f.Total, f.Percent)
	if f.Outage != "" {
		return s + "paused"
	}
	return s + "ETA " + f.ETA
}

// statsPart is one figure of the bar's second line, with the colour it is
// painted in ("" for none) and its rank: when the line is wider than the
// terminal, the parts of the lowest rank are left out first, but a part
// to keep never is.
type statsPart struct {
	text, color string
	rank        int
	keep        bool
	// cut, if not nil, shortens the part to at most n columns, where the
	// parts kept are still too wide (the reason of a pause).
	cut func(n int) string
}

// statsParts are the figures of the bar's second line, in the order they
// are shown: a pause first, then the rates, failed, retrying, concurrency
// and cost. Ranked from the first left out: concurrency, retrying, the
// rates, failed; the cost and the pause are kept.
func (f progressFigures) statsParts() []statsPart {
	failed, retrying := "", ""
	if f.Failed > 0 {
		failed = colorRed
	}
	if f.Retrying > 0 {
		retrying = colorYellow
	}
	var parts []statsPart
	if f.Outage != "" {
		parts = append(parts, statsPart{text: f.pause(f.Outage), color: colorYellow, keep: true,
			cut: func(n int) string { return f.pause(cutText(f.Outage, n-utf8.RuneCountInString(f.pause("")))) }})
	}
	parts = append(parts,
		statsPart{text: fmt.Sprintf("%.1f req/s, %.0f tok/s", f.ReqRate, f.TokRate), rank: 3},
		statsPart{text: fmt.Sprintf("%d failed", f.Failed), color: failed, rank: 4},
		statsPart{text: fmt.Sprintf("%d retrying", f.Retrying), color: retrying, rank: 2})
	if f.MaxConcurrency > 0 {
		parts = append(parts, statsPart{text: fmt.Sprintf("conc %d/%d", f.Concurrency, f.MaxConcurrency), rank: 1})
	}
	if f.Cost != "" {
		parts = append(parts, statsPart{text: "cost " + f.Cost, keep: true})
	}
	return parts
}

// statsIndent and statsSep lay out the bar's second line.
const statsIndent, statsSep = "  ", ", "

// lineWidth is the width of parts laid out on the second line.
func lineWidth(parts []statsPart) int {
	n := len(statsIndent) + len(statsSep)*max(len(parts)-1, 0)
	for _, p := range parts {
		n += utf8.RuneCountInString(p.text)
	}
	return n
}

// fitParts leaves out the parts of the lowest rank until the line fits in
// width columns or only the parts to keep are left, then cuts the part
// that can be cut; a line still too wide is cut at the edge by fillStats.
func fitParts(parts []statsPart, width int) []statsPart {
	parts = slices.Clone(parts)
	for lineWidth(parts) > width {
		low := -1
		for i, p := range parts {
			if !p.keep && (low < 0 || p.rank < parts[low].rank) {
				low = i
			}
		}
		if low < 0 {
			break
		}
		parts = slices.Delete(parts, low, low+1)
	}
	if over := lineWidth(parts) - width; over > 0 {
		for i, p := range parts {
			if p.cut != nil {
				parts[i].text = p.cut(utf8.RuneCountInString(p.text) - over)
				break
			}
		}
	}
	return parts
}

// cutText cuts s to at most n runes, marking the cut with "…".
func cutText(s string, n int) string {
	switch {
	case utf8.RuneCountInString(s) <= n:
		return s
	case n <= 0:
		return ""
	case n == 1:
		return "…"
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}

// fillStats writes the bar's second line, fitted to the width available
// (fitParts); a line still too wide is cut at the edge, and the part that
// is cut is not painted, so no escape code is cut in two.
func (b *progressBar) fillStats(w io.Writer, st decor.Statistics) error {
	var line strings.Builder
	line.WriteString(statsIndent)
	room := st.AvailableWidth - len(statsIndent)
	for i, part := range fitParts(b.figures().statsParts(), st.AvailableWidth) {
		if i > 0 {
			if room <= len(statsSep) {
				break
			}
			line.WriteString(statsSep)
			room -= len(statsSep)
		}
		if n := utf8.RuneCountInString(part.text); n > room {
			line.WriteString(cutText(part.text, max(room, 0)))
			break
		}
		line.WriteString(b.paint(part.color, part.text))
		room -= utf8.RuneCountInString(part.text)
	}
	_, err := fmt.Fprintln(w, line.String())
	return err
}
