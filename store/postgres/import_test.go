package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// The tests of this file cover what the contract suite's small imports do
// not reach: duplicates and read errors beyond the first COPY chunk.

func TestImportDuplicatesInChunks(t *testing.T) {
	n := 3*copyChunk + 7 // three full chunks and a short one
	tests := []struct {
		name string
		dups map[int]int // line → the earlier line whose custom_id it reuses
	}{
		{"SameChunk", map[int]int{5: 2}},
		{"EarlierChunk", map[int]int{copyChunk + 3: 1}},
		{"ShortLastChunk", map[int]int{n: copyChunk}},
		{"SeveralChunks", map[int]int{10: 9, copyChunk + 1: copyChunk, 2*copyChunk + 50: 7, n - 1: 3}},
	}
	s := mustOpen(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs := benchRequests(n)
			for line, first := range tt.dups {
				reqs[line-1].CustomID = reqs[first-1].CustomID
			}
			src := &sliceSource{reqs: reqs}
			_, err := s.Import(context.Background(), jobs.Job{Name: tt.name, Source: "bench.jsonl"}, src)
			var ve *jobs.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Import() error = %v, want a *jobs.ValidationError", err)
			}
			var want []jobs.LineError
			for line, first := range tt.dups {
				want = append(want, jobs.LineError{File: "bench.jsonl", Line: line,
					Reason: fmt.Sprintf("duplicate custom_id %q (first used on line %d)", fmt.Sprintf("req-%d", first), first)})
			}
			slices.SortFunc(want, func(a, b jobs.LineError) int { return a.Line - b.Line })
			if got := src.rejected; !slices.Equal(got, want) {
				t.Errorf("Reject calls = %+v, want %+v", got, want)
			}
			if _, err := s.Job(context.Background(), tt.name); !errors.Is(err, jobs.ErrNotFound) {
				t.Errorf("Job() after a refused import: %v, want ErrNotFound", err)
			}
			if got := queryInt(t, s, `SELECT count(*) FROM requests`); got != 0 {
				t.Errorf("requests after a refused import = %d, want 0", got)
			}
		})
	}
}

// TestImportKeepsDuplicatesInChunks: with invalid lines kept, a duplicate
// in a later chunk is stored failed under line-N, and every other line as
// it came, in line order.
func TestImportKeepsDuplicatesInChunks(t *testing.T) {
	n := copyChunk + 10
	reqs := benchRequests(n)
	reqs[copyChunk+4].CustomID = "req-3" // line copyChunk+5
	s := mustOpen(t)
	job, err := s.Import(context.Background(), jobs.Job{Name: "keep", Source: "bench.jsonl"},
		&keepingSource{sliceSource{reqs: reqs}})
	if err != nil || job.Total != n {
		t.Fatalf("Import() = %d requests, %v; want %d, nil", job.Total, err, n)
	}
	line := copyChunk + 5
	var id, status, class, msg string
	if err := s.pool.QueryRow(context.Background(), `SELECT custom_id, status, error_class, error_message
		FROM requests WHERE job_id = $1 AND line = $2`, job.ID, line).Scan(&id, &status, &class, &msg); err != nil {
		t.Fatal(err)
	}
	wantMsg := fmt.Sprintf(`bench.jsonl:%d: duplicate custom_id "req-3" (first used on line 3)`, line)
	if id != fmt.Sprintf("line-%d", line) || status != "failed" || class != string(jobs.ClassInvalidInput) || msg != wantMsg {
		t.Errorf("duplicate stored as %q %s %s %q; want line-%d failed %s %q", id, status, class, msg, line,
			jobs.ClassInvalidInput, wantMsg)
	}
	if got := queryInt(t, s, `SELECT count(*) FROM requests r JOIN requests q ON q.id < r.id AND q.line > r.line
		WHERE r.job_id = $1 AND q.job_id = $1`, job.ID); got != 0 {
		t.Errorf("%d pairs of requests out of line order, want 0", got)
	}
}

// keepingSource is a sliceSource that keeps invalid lines.
type keepingSource struct{ sliceSource }

func (*keepingSource) KeepsInvalid() bool { return true }

func TestImportReadErrorAfterChunks(t *testing.T) {
	s := mustOpen(t)
	readErr := errors.New("disk on fire")
	src := &failingSource{sliceSource: sliceSource{reqs: benchRequests(2*copyChunk + 1)}, err: readErr}
	_, err := s.Import(context.Background(), jobs.Job{Name: "broken", Source: "bench.jsonl"}, src)
	if !errors.Is(err, readErr) {
		t.Fatalf("Import() error = %v, want %v", err, readErr)
	}
	if got := queryInt(t, s, `SELECT count(*) FROM jobs`) + queryInt(t, s, `SELECT count(*) FROM requests`); got != 0 {
		t.Errorf("jobs and requests after a failed read = %d, want 0", got)
	}
}

// failingSource is a sliceSource whose Next fails at its end instead of
// returning io.EOF.
type failingSource struct {
	sliceSource
	err error
}

func (f *failingSource) Next() (jobs.Request, error) {
	if f.next >= len(f.reqs) {
		return jobs.Request{}, f.err
	}
	return f.sliceSource.Next()
}

// queryInt runs a query of one integer.
func queryInt(t *testing.T, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestImportLargeBodiesInChunks: bodies large enough that chunks end at
// copyChunkBytes, not at copyChunk rows, are stored whole, and a duplicate
// of a line two chunks back is found.
func TestImportLargeBodiesInChunks(t *testing.T) {
	const lines = 80
	pad := strings.Repeat("x", copyChunkBytes/(lines/2))
	reqs := benchRequests(lines)
	for i := range reqs {
		reqs[i].Body = fmt.Appendf(nil, `{"model":"m","messages":[{"role":"user","content":"%d %s"}]}`, i, pad)
	}
	reqs[lines-1].CustomID = reqs[0].CustomID
	s := mustOpen(t)
	src := &sliceSource{reqs: reqs}
	_, err := s.Import(context.Background(), jobs.Job{Name: "large", Source: "bench.jsonl"}, src)
	want := []jobs.LineError{{File: "bench.jsonl", Line: lines,
		Reason: `duplicate custom_id "req-1" (first used on line 1)`}}
	if !slices.Equal(src.rejected, want) {
		t.Fatalf("Import() = %v, rejected %+v; want %+v", err, src.rejected, want)
	}
	reqs[lines-1].CustomID = "last"
	job, err := s.Import(context.Background(), jobs.Job{Name: "large", Source: "bench.jsonl"}, &sliceSource{reqs: reqs})
	if err != nil || job.Total != lines {
		t.Fatalf("Import() = %d requests, %v; want %d", job.Total, err, lines)
	}
	if got := queryInt(t, s, `SELECT count(*) FROM requests WHERE job_id = $1 AND length(body) > $2`, job.ID, len(pad)); got != lines {
		t.Errorf("%d bodies stored whole, want %d", got, lines)
	}
}
