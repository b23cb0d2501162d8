package input

import (
	"io"
	"testing"
)

// BenchmarkReader reads typical ~300-byte chat lines (metadata stripped)
// and reports lines per second.
func BenchmarkReader(b *testing.B) {
	const n = 20_000
	path := writeLines(b, n)
	b.SetBytes(int64(len(chatLine(0)) + 1))
	b.ReportAllocs()
	b.ResetTimer()
	lines := 0
	for lines < b.N {
		r, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for lines < b.N {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			lines++
		}
		r.Close()
	}
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}
