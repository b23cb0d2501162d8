package worker

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
)

// BenchmarkStreamMemory reads 1,000 streams of a reasoning model at once,
// as `run --concurrency 1000` does, through the SSE reader and the
// assembler only (not the transport, which a client without either pays
// too). It reports the heap each stream holds halfway through
// (live-B/stream), which multiplies by the streams in flight in a run's
// peak RSS, and all it allocates from its first event to its assembled
// body (alloc-B/stream), which the GC has to find room for.
func BenchmarkStreamMemory(b *testing.B) {
	const streams = 1000
	events := fakeStreamEvents(b, 52)
	half := len(events) / 2
	b.ReportAllocs()
	var live, alloc float64
	for b.Loop() {
		srcs := make([]*eventFeed, streams)
		readers := make([]*sseReader, streams)
		asms := make([]*assembler, streams)
		for i := range srcs {
			srcs[i] = &eventFeed{events: events}
		}
		before := heapNow(true)
		for i := range srcs {
			readers[i] = newSSEReader(srcs[i], DefaultMaxResponseBytes)
			asms[i] = newAssembler(jobs.EndpointChat)
		}
		for range half {
			for i := range srcs {
				nextEvent(b, readers[i], asms[i])
			}
		}
		mid := heapNow(true)
		live += float64(mid.HeapAlloc-before.HeapAlloc) / streams
		for range len(events) - half {
			for i := range srcs {
				nextEvent(b, readers[i], asms[i])
			}
		}
		for _, a := range asms {
			if _, err := a.Body(); err != nil {
				b.Fatal(err)
			}
		}
		end := heapNow(false)
		alloc += float64(end.TotalAlloc-before.TotalAlloc) / streams
		runtime.KeepAlive(srcs)
	}
	b.ReportMetric(live/float64(b.N), "live-B/stream")
	b.ReportMetric(alloc/float64(b.N), "alloc-B/stream")
}

func heapNow(gc bool) runtime.MemStats {
	if gc {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// nextEvent reads one event of a stream into its assembler.
func nextEvent(b *testing.B, sr *sseReader, a *assembler) {
	ev, err := sr.Next()
	if err != nil {
		b.Fatal(err)
	}
	if ev.Kind == sseData {
		if err := a.Add(ev.Data); err != nil {
			b.Fatal(err)
		}
	}
}

// eventFeed returns one event a Read, as a stream's events come off the
// network 20 ms apart.
type eventFeed struct {
	events [][]byte
	next   int
	left   []byte
}

func (f *eventFeed) Read(p []byte) (int, error) {
	if len(f.left) == 0 {
		if f.next == len(f.events) {
			return 0, io.EOF
		}
		f.left, f.next = f.events[f.next], f.next+1
	}
	n := copy(p, f.left)
	f.left = f.left[n:]
	return n, nil
}

// fakeStreamEvents returns the blocks of the stream the fake sends the
// streams scenario of internal/bench (deepseek-r1, words of reasoning and
// of content, a word an event), each with its blank line.
func fakeStreamEvents(tb testing.TB, words int) [][]byte {
	tb.Helper()
	srv := fakeapi.Start(tb, fakeapi.Config{Key: "k", StreamWords: words})
	body := `{"model":"deepseek/deepseek-r1","messages":[{"role":"user","content":"Think through item 7 of the catalogue, then answer."}],` +
		`"stream":true,"stream_options":{"include_usage":true}}`
	req, err := http.NewRequest(http.MethodPost, srv.URL()+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer k")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("status %d, %v: %s", resp.StatusCode, err, raw)
	}
	var events [][]byte
	for len(raw) > 0 {
		i := bytes.Index(raw, []byte("\n\n"))
		if i < 0 {
			tb.Fatalf("an event without its blank line: %q", raw)
		}
		events, raw = append(events, raw[:i+2]), raw[i+2:]
	}
	return events
}
