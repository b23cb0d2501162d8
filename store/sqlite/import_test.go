package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
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
		if !reflect.DeepEqual(got, want) {
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

// invalidRequest is line n kept invalid by a reader with --skip-invalid.
func invalidRequest(n int, id, reason string) jobs.Request {
	return jobs.Request{Line: n, CustomID: id, Endpoint: jobs.EndpointChat, Body: []byte(fmt.Sprintf("{bad line %d", n)),
		Status: jobs.StatusFailed, Invalid: fmt.Sprintf("in.jsonl:%d: %s", n, reason)}
}

func TestImportKeepsInvalidLines(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	// 250 valid lines, with invalid ones in a full batch, a duplicate and
	// custom_ids that collide in every way an invalid line's can.
	var in []jobs.Request
	for n := 1; n <= 250; n++ {
		switch n {
		case 17:
			in = append(in, invalidRequest(n, "line-17", "invalid JSON"))
		case 50:
			in = append(in, invalidRequest(n, "req-1", "temperature out of range")) // id taken: line-50
		case 120:
			dup := chatRequest(n)
			dup.CustomID = "req-3" // a duplicate of line 3
			in = append(in, dup)
		case 130:
			r := chatRequest(n)
			r.CustomID = "line-131" // takes the fallback id of line 131
			in = append(in, r)
		case 131:
			in = append(in, invalidRequest(n, "req-2", "no messages")) // req-2 and line-131 taken: line-131~2
		default:
			in = append(in, chatRequest(n))
		}
	}
	job, err := s.Import(ctx, jobs.Job{Name: "skip", Source: "in.jsonl"}, &sliceSource{reqs: in, keep: true})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if job.Total != 250 {
		t.Errorf("Total = %d, want 250 (every line is a request)", job.Total)
	}
	failed := map[int]string{}
	err = s.Records(ctx, job.ID, func(rec jobs.Record) error {
		if rec.Request.Status == jobs.StatusFailed {
			if rec.Failure == nil || rec.Failure.Class != jobs.ClassInvalidInput {
				t.Errorf("line %d: failure %+v, want class invalid_input", rec.Request.Line, rec.Failure)
				return nil
			}
			failed[rec.Request.Line] = rec.Request.CustomID + " " + rec.Failure.Message
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{
		17:  "line-17 in.jsonl:17: invalid JSON",
		50:  "line-50 in.jsonl:50: temperature out of range",
		120: `line-120 in.jsonl:120: duplicate custom_id "req-3" (first used on line 3)`,
		131: "line-131~2 in.jsonl:131: no messages",
	}
	if !maps.Equal(failed, want) {
		t.Errorf("failed requests:\ngot  %v\nwant %v", failed, want)
	}
	if n := len(mustClaim(t, s, job.ID, 1000)); n != 246 {
		t.Errorf("claimed %d requests, want the 246 valid ones", n)
	}
	var body []byte
	mustQueryRow(t, s, `SELECT body FROM requests WHERE line = 17`, &body)
	if string(body) != "{bad line 17" {
		t.Errorf("body of an invalid line = %q, want the line's bytes", body)
	}
	msgs, total, err := s.InvalidLines(ctx, job.ID, 2)
	if err != nil || total != 4 || !slices.Equal(msgs, []string{"in.jsonl:17: invalid JSON", "in.jsonl:50: temperature out of range"}) {
		t.Errorf("InvalidLines(2) = %q, %d, %v; want the first two of 4", msgs, total, err)
	}
}

// Without --skip-invalid a duplicate is rejected and nothing is stored.
func TestImportRejectsDuplicateWithoutKeep(t *testing.T) {
	s := mustOpenStore(t)
	in := chatRequests(3)
	in[2].CustomID = "req-1"
	_, err := s.Import(context.Background(), jobs.Job{Name: "dup", Source: "in.jsonl"}, &sliceSource{reqs: in})
	var ve *jobs.ValidationError
	if !errors.As(err, &ve) || ve.Total != 1 || ve.Errors[0].Line != 3 {
		t.Fatalf("Import: %v, want a validation error on line 3", err)
	}
	var n int
	mustQueryRow(t, s, `SELECT count(*) FROM requests`, &n)
	if n != 0 {
		t.Errorf("%d requests stored, want none", n)
	}
}

// retry puts requests that failed at the API back to pending, never a line
// that was invalid at import: no attempt could make it valid.
func TestRetryLeavesInvalidInputFailed(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	in := append(chatRequests(2), invalidRequest(3, "bad", "invalid JSON"))
	job, err := s.Import(ctx, jobs.Job{Name: "retry-invalid", Source: "in.jsonl"}, &sliceSource{reqs: in, keep: true})
	if err != nil {
		t.Fatal(err)
	}
	reqs := mustClaim(t, s, job.ID, 10)
	mustRecord(t, s, failPermanently(reqs[0]), succeed(reqs[1]))
	n, err := s.Retry(ctx, job.ID)
	if err != nil || n != 1 {
		t.Fatalf("Retry() = %d, %v; want 1 (the API failure only)", n, err)
	}
	var status string
	mustQueryRow(t, s, `SELECT status FROM requests WHERE custom_id = 'bad'`, &status)
	if status != string(jobs.StatusFailed) {
		t.Errorf("invalid line is %s after retry, want failed", status)
	}
	if got := mustClaim(t, s, job.ID, 10); len(got) != 1 || got[0].CustomID != "req-1" {
		t.Errorf("claimed %+v after retry, want req-1 only", got)
	}
}
