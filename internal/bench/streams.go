package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

func init() {
	register(Scenario{
		Name: "streams",
		Doc: "1,000 concurrent streams of a reasoning model, 107 events 20 ms apart: the llmbatch binary from start to exit " +
			"beside a minimal streaming client in a child process: wall, CPU and peak RSS",
		Run: runStreams,
	})
}

// streamsConfig sizes the streams scenario.
type streamsConfig struct {
	concurrency, requests, words int
	interval                     time.Duration
}

func (s *streamsConfig) flags() {
	flag.IntVar(&s.concurrency, "streams", 1000, "streams in flight in the streams scenario")
	flag.IntVar(&s.requests, "stream-requests", 1000, "requests of the streams scenario")
	flag.IntVar(&s.words, "stream-words", 52, "words of reasoning and of content per stream, one an event (52: 107 events with the role, finish and usage chunks)")
	flag.DurationVar(&s.interval, "stream-interval", 20*time.Millisecond, "time between a stream's events")
}

func runStreams(ctx context.Context, e *Env) error {
	s := e.cfg.streams
	file := e.path(fmt.Sprintf("streams-%d.jsonl", s.requests))
	if err := writeStreamInput(file, s.requests); err != nil {
		return err
	}
	events := 2*s.words + 3
	e.note("%s requests of deepseek-r1, %s streams at once, %d events %s apart (%s a stream)", thousands(float64(s.requests)),
		thousands(float64(s.concurrency)), events, s.interval, ms(time.Duration(events-1)*s.interval))
	cfg := fakeapi.Config{Key: benchKey, ChunkInterval: s.interval, StreamWords: s.words}
	rounds, err := childRounds(ctx, e, roundSpec{label: "streams", file: file, conc: s.concurrency, cfg: cfg,
		cases: []engineCase{sqliteOne}, rounds: e.rounds(5)})
	if err != nil {
		return err
	}
	ratio := func(f func(childResult) float64) (float64, string) {
		rs := make([]float64, len(rounds))
		for i, r := range rounds {
			rs[i] = f(r.llm[0]) / f(r.minimal)
		}
		return median(rs), floats(rs)
	}
	wall := func(r childResult) float64 { return r.wall.Seconds() }
	cpu := func(r childResult) float64 { return r.cpu.Seconds() }
	rss := func(r childResult) float64 { return float64(r.maxRSS) }
	anon := func(r childResult) float64 { return float64(r.maxAnon) }
	for _, f := range []struct {
		name, unit string
		f          func(childResult) float64
		scale      float64
		target     float64
	}{
		{"wall", "s", wall, 1, 1.05},
		{"CPU", "CPU-s", cpu, 1, 1.5},
		{"peak RSS", "MB", rss, 1e-6, 1.2},
		// Not a target: the peak RSS less the executable's pages.
		{"peak RssAnon", "MB", anon, 1e-6, 0},
	} {
		m, ls := medianOf(rounds, f.f)
		l := ls[0]
		r, list := ratio(f.f)
		e.figure(fmt.Sprintf("%s, minimal / llmbatch", f.name), fmt.Sprintf("%.2f / %.2f %s", m*f.scale, l*f.scale, f.unit), "", false)
		if f.target == 0 {
			e.note("llmbatch / minimal client (%s): %.2f× (rounds %s)", f.name, r, list)
			continue
		}
		e.figure(fmt.Sprintf("  llmbatch / minimal client (%s)", f.name), fmt.Sprintf("%.2f× (rounds %s)", r, list),
			fmt.Sprintf("≤ %.2f×", f.target), r <= f.target)
	}
	m, ls := medianOf(rounds, cpu)
	l := ls[0]
	perEvent := func(x float64) string {
		return fmt.Sprintf("%.1f µs", x*1e6/float64(s.requests*events))
	}
	e.note("CPU per event: minimal client %s, llmbatch %s (start and exit included)", perEvent(m), perEvent(l))
	return nil
}

// writeStreamInput writes n chat lines that ask a reasoning model for a
// stream with its usage, as llmbatch would send them (so that the
// minimal client sends the same bytes).
func writeStreamInput(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i := range n {
		id := strconv.Itoa(i + 1)
		fmt.Fprintf(w, `{"custom_id":"s-%s","model":"deepseek/deepseek-r1","messages":[{"role":"user","content":"Think through item %s of the catalogue, then answer."}],"stream":true,"stream_options":{"include_usage":true}}`+"\n", id, id)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
