package input

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// chatLine is a typical ~300-byte chat line with metadata to strip.
func chatLine(i int) string {
	return fmt.Sprintf(`{"custom_id":"req-%07d","model":"deepseek/deepseek-v3","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"Summarise item %d of the catalogue in one sentence, please."}],"temperature":0.7,"max_tokens":256,"metadata":{"split":"train","row":%d}}`, i, i, i)
}

// writeLines writes n generated lines to a file in dir.
func writeLines(tb testing.TB, n int) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "big.jsonl")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintln(w, chatLine(i))
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestReaderMemoryFlat reads a million lines (300 MB) and checks that the
// live heap, sampled as it goes, stays small: the reader must keep no
// lines, requests or hash input. Heap rather than RSS, which the runtime
// returns to the OS only lazily.
func TestReaderMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 300 MB file")
	}
	n := 1_000_000
	if raceEnabled {
		n = 100_000
	}
	r, err := Open(writeLines(t, n), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var peak uint64
	count := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if count++; count%100_000 == 0 {
			peak = max(peak, liveHeap())
		}
	}
	if err := r.Err(); err != nil || count != n {
		t.Fatalf("got %d requests and error %v, want %d and none", count, err, n)
	}
	if limit := uint64(8 << 20); peak > limit {
		t.Errorf("live heap reached %d bytes while reading, want at most %d", peak, limit)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
