package postgres

import (
	"fmt"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// chatLines is lines 1 to n of a chat input of model, each with the cache
// key key(i) (none where it returns "").
func chatLines(n int, model string, key func(line int) string) []jobs.Request {
	reqs := make([]jobs.Request, n)
	for i := range reqs {
		line := i + 1
		reqs[i] = jobs.Request{Line: line, CustomID: fmt.Sprintf("req-%d", line), Endpoint: jobs.EndpointChat,
			Model: model, Body: fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"user","content":"prompt %d"}]}`, model, line)}
		if key != nil {
			reqs[i].CacheKey = key(line)
		}
	}
	return reqs
}

func mustImportLines(t *testing.T, s *Store, name string, reqs []jobs.Request) jobs.Job {
	t.Helper()
	job, err := s.Import(t.Context(), jobs.Job{Name: name, Source: name + ".jsonl"}, &sliceSource{reqs: reqs})
	if err != nil {
		t.Fatalf("Import(%q): %v", name, err)
	}
	return job
}

// TestRecordsAcrossFetches: the cursor is read a chunk at a time; a job
// that fills its last chunk exactly, or spills one record into another,
// gives every request once, in input order, bodies included when asked.
func TestRecordsAcrossFetches(t *testing.T) {
	s := mustOpen(t)
	for _, n := range []int{recordsChunk, 2*recordsChunk + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			in := chatLines(n, "m", nil)
			job := mustImportLines(t, s, fmt.Sprintf("job-%d", n), in)
			for _, bodies := range []bool{false, true} {
				var got []jobs.Request
				err := s.RecordsWith(t.Context(), job.ID, jobs.RecordOptions{Bodies: bodies}, func(r jobs.Record) error {
					got = append(got, r.Request)
					return nil
				})
				if err != nil {
					t.Fatalf("RecordsWith(bodies %v): %v", bodies, err)
				}
				checkInOrder(t, got, in, bodies)
			}
		})
	}
}

// checkInOrder checks that got holds the requests of in, in their order,
// with their bodies when bodies is set.
func checkInOrder(t *testing.T, got, in []jobs.Request, bodies bool) {
	t.Helper()
	if len(got) != len(in) {
		t.Fatalf("got %d records, want %d", len(got), len(in))
	}
	for i, r := range got {
		wantBody := ""
		if bodies {
			wantBody = string(in[i].Body)
		}
		if r.Line != in[i].Line || r.CustomID != in[i].CustomID || string(r.Body) != wantBody ||
			(i > 0 && r.ID <= got[i-1].ID) {
			t.Fatalf("record %d = line %d %q (id %d), body %q; want line %d %q after id %d, body %q",
				i, r.Line, r.CustomID, r.ID, r.Body, in[i].Line, in[i].CustomID, got[max(i-1, 0)].ID, wantBody)
		}
	}
}

// TestRecordsWhileReadingElsewhere: the callback may use the store (an
// export that reads statistics as it writes) while the cursor holds its
// connection, and a callback's error ends the read at once, mid-chunk.
func TestRecordsWhileReadingElsewhere(t *testing.T) {
	s := mustOpen(t)
	job := mustImportLines(t, s, "nested", chatLines(recordsChunk+10, "m", nil))
	calls := 0
	stop := fmt.Errorf("stop")
	err := s.Records(t.Context(), job.ID, func(r jobs.Record) error {
		if calls++; calls%250 == 0 {
			st, err := s.Stats(t.Context(), job.ID)
			if err != nil || st.Counts[jobs.StatusPending] != recordsChunk+10 {
				return fmt.Errorf("Stats inside Records = %v, %v", st.Counts, err)
			}
		}
		if calls == recordsChunk+5 {
			return stop
		}
		return nil
	})
	if err != stop || calls != recordsChunk+5 {
		t.Errorf("Records() = %v after %d calls, want %v after %d", err, calls, stop, recordsChunk+5)
	}
}
