package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// exactBody spells its numbers the way a decode and re-encode would not.
const exactBody = `{ "model" : "deepseek/deepseek-r1",  "temperature":1e-5, "top_p":0.10,` +
	` "seed":12345678901234567890, "messages":[{"role":"user","content":"caf\u00e9 \"q\""}] }`

func TestImportStoresRequestsExactly(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	in := []jobs.Request{
		{Line: 1, CustomID: "exact", Endpoint: jobs.EndpointChat, Model: "deepseek/deepseek-r1",
			Body: []byte(exactBody), Metadata: json.RawMessage(`{"n": 1.50, "tags":["a"]}`)},
		{Line: 2, CustomID: "line-2", Endpoint: jobs.EndpointCompletions, Model: "deepseek/deepseek-v3",
			Body: []byte(`{"model":"deepseek/deepseek-v3","prompt":[1,2,3]}`)},
		{Line: 4, CustomID: "after-blank", Endpoint: jobs.EndpointChat, Model: "m",
			Body: []byte(`{"model":"m","messages":[]}`), Metadata: json.RawMessage(`"just a string"`)},
	}
	job, err := s.Import(ctx, jobs.Job{Name: "exact", Source: "in/exact.jsonl", Fingerprint: "sha256:abc",
		DefaultModel: "deepseek/deepseek-v3"}, &sliceSource{reqs: in})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}

	t.Run("ReturnedJob", func(t *testing.T) {
		if job.ID == 0 || job.Total != 3 || job.State != jobs.JobActive || !job.CreatedAt.Equal(t0) {
			t.Errorf("Import() = %+v; want an ID, Total 3, state active, created at %v", job, t0)
		}
	})
	t.Run("StoredJob", func(t *testing.T) {
		got, err := s.Job(ctx, "exact")
		if err != nil {
			t.Fatalf("Job: %v", err)
		}
		want := jobs.Job{ID: job.ID, Name: "exact", Source: "in/exact.jsonl", Fingerprint: "sha256:abc",
			DefaultModel: "deepseek/deepseek-v3", State: jobs.JobActive, Total: 3}
		if !got.CreatedAt.Equal(t0) {
			t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, t0)
		}
		got.CreatedAt = time.Time{}
		if got != want {
			t.Errorf("Job() = %+v, want %+v", got, want)
		}
	})
	t.Run("ClaimReturnsBytesInInputOrder", func(t *testing.T) {
		got := mustClaim(t, s, job.ID, 10)
		if len(got) != len(in) {
			t.Fatalf("claimed %d requests, want %d", len(got), len(in))
		}
		for i, r := range got {
			w := in[i]
			if r.Line != w.Line || r.CustomID != w.CustomID || r.Endpoint != w.Endpoint || r.Model != w.Model ||
				r.JobID != job.ID || r.Attempts != 0 {
				t.Errorf("request %d = %+v, want line %d %q %s %q", i, r, w.Line, w.CustomID, w.Endpoint, w.Model)
			}
			if !bytes.Equal(r.Body, w.Body) {
				t.Errorf("request %d body = %s, want %s", i, r.Body, w.Body)
			}
			if !bytes.Equal(r.Metadata, w.Metadata) || (r.Metadata == nil) != (w.Metadata == nil) {
				t.Errorf("request %d metadata = %q, want %q", i, r.Metadata, w.Metadata)
			}
		}
	})
	t.Run("RecordsInInputOrder", func(t *testing.T) {
		var lines []int
		var meta []string
		err := s.Records(ctx, job.ID, func(rec jobs.Record) error {
			lines = append(lines, rec.Request.Line)
			meta = append(meta, string(rec.Request.Metadata))
			return nil
		})
		if err != nil {
			t.Fatalf("Records: %v", err)
		}
		if got, want := lines, []int{1, 2, 4}; !slices.Equal(got, want) {
			t.Errorf("lines = %v, want %v", got, want)
		}
		if want := []string{`{"n": 1.50, "tags":["a"]}`, ``, `"just a string"`}; !slices.Equal(meta, want) {
			t.Errorf("metadata = %q, want %q", meta, want)
		}
	})
}

func TestImportRejectsAndStoresNothing(t *testing.T) {
	ioErr := errors.New("read input.jsonl: input/output error")
	dup := func(line int, id string) jobs.Request {
		r := chatRequest(line)
		r.CustomID = id
		return r
	}
	tests := []struct {
		name       string
		src        *sliceSource
		wantErr    error
		wantReject []jobs.LineError
	}{
		{
			name:    "DuplicateCustomID",
			src:     &sliceSource{reqs: []jobs.Request{dup(1, "a"), dup(2, "x"), dup(3, "b"), dup(5, "x")}},
			wantErr: &jobs.ValidationError{},
			wantReject: []jobs.LineError{{File: "input.jsonl", Line: 5,
				Reason: `duplicate custom_id "x" (first used on line 2)`}},
		},
		{
			name:    "ReadError",
			src:     &sliceSource{reqs: chatRequests(5), failAt: 3, ioErr: ioErr},
			wantErr: ioErr,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := mustOpenStore(t)
			_, err := s.Import(ctx, jobs.Job{Name: "bad", Source: "bad.jsonl", Fingerprint: "fp"}, tt.src)
			var ve *jobs.ValidationError
			switch want := tt.wantErr.(type) {
			case *jobs.ValidationError:
				if !errors.As(err, &ve) {
					t.Fatalf("Import() error = %v, want a *jobs.ValidationError", err)
				}
				if ve.Total != len(tt.wantReject) || len(ve.Errors) != len(tt.wantReject) || ve.Errors[0] != tt.wantReject[0] {
					t.Errorf("ValidationError = %+v, want %+v", ve, tt.wantReject)
				}
			default:
				if !errors.Is(err, want) {
					t.Fatalf("Import() error = %v, want %v", err, want)
				}
			}
			if got := tt.src.rejected; len(got) != len(tt.wantReject) || (len(got) > 0 && got[0] != tt.wantReject[0]) {
				t.Errorf("Reject calls = %+v, want %+v", got, tt.wantReject)
			}
			if _, err := s.Job(ctx, "bad"); !errors.Is(err, jobs.ErrNotFound) {
				t.Errorf("Job() after failed import: error = %v, want ErrNotFound", err)
			}
			for _, table := range []string{"jobs", "requests"} {
				if n := queryInt(t, s, `SELECT count(*) FROM `+table); n != 0 {
					t.Errorf("%s rows after failed import = %d, want 0", table, n)
				}
			}
			// Nothing half-done blocks a corrected import under the same name.
			if job := mustImport(t, s, "bad", chatRequests(2)); job.Total != 2 {
				t.Errorf("Total after corrected import = %d, want 2", job.Total)
			}
		})
	}
}

func TestImportSameNameTwice(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	first := mustImport(t, s, "twice", chatRequests(2))
	_, err := s.Import(ctx, jobs.Job{Name: "twice", Source: "other.jsonl", Fingerprint: "fp-other"},
		&sliceSource{reqs: chatRequests(5)})
	if !errors.Is(err, jobs.ErrJobChanged) {
		t.Fatalf("second Import() error = %v, want ErrJobChanged", err)
	}
	got, err := s.Job(ctx, "twice")
	if err != nil || got.ID != first.ID || got.Total != 2 || got.Fingerprint != "fp-twice" {
		t.Errorf("Job() = %+v, %v; want the first import unchanged (Total 2)", got, err)
	}
	if n := queryInt(t, s, `SELECT count(*) FROM requests`); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
}

func TestJobs(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	if _, err := s.Job(ctx, "missing"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Job(missing) error = %v, want ErrNotFound", err)
	}
	a := mustImport(t, s, "a", chatRequests(3))
	b := mustImport(t, s, "b", chatRequests(1))
	mustClaim(t, s, a.ID, 1)
	list, err := s.Jobs(ctx)
	if err != nil {
		t.Fatalf("Jobs: %v", err)
	}
	if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Fatalf("Jobs() = %+v, want a then b", list)
	}
	wantA := map[jobs.Status]int{jobs.StatusPending: 2, jobs.StatusRunning: 1, jobs.StatusSucceeded: 0,
		jobs.StatusFailed: 0, jobs.StatusCancelled: 0}
	if !maps.Equal(list[0].Counts, wantA) {
		t.Errorf("a counts = %v, want %v", list[0].Counts, wantA)
	}
	if got := list[1].Counts[jobs.StatusPending]; got != 1 {
		t.Errorf("b pending = %d, want 1", got)
	}
}
