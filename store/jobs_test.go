package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// statuses lists the job's request statuses in input order.
func statuses(tb testing.TB, s *Store, jobID int64) []jobs.Status {
	tb.Helper()
	rows, err := s.w.Query(`SELECT status FROM requests WHERE job_id = ? ORDER BY id`, jobID)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []jobs.Status
	for rows.Next() {
		var st jobs.Status
		if err := rows.Scan(&st); err != nil {
			tb.Fatal(err)
		}
		out = append(out, st)
	}
	return out
}

func succeed(r jobs.Request) jobs.Outcome {
	return jobs.Outcome{Request: r, Next: jobs.StatusSucceeded, CountAttempt: true,
		Attempt: &jobs.Attempt{Number: r.Attempts + 1, StartedAt: t0, StatusCode: 200},
		Result:  &jobs.Result{StatusCode: 200, Raw: []byte(`{"id":"x"}`), Latency: time.Second, CreatedAt: t0}}
}

func failPermanently(r jobs.Request) jobs.Outcome {
	return jobs.Outcome{Request: r, Next: jobs.StatusFailed, CountAttempt: true,
		Attempt: &jobs.Attempt{Number: r.Attempts + 1, StartedAt: t0, StatusCode: 400, Class: jobs.ClassInvalidRequest},
		Failure: &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "bad"}}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "retry", chatRequests(4))
	mustExec(t, s, `UPDATE requests SET attempts = 4`)
	reqs := mustClaim(t, s, job.ID, 3)
	mustRecord(t, s, failPermanently(reqs[0]), succeed(reqs[1]), failPermanently(reqs[2]))

	for _, want := range []int{2, 0} {
		if n, err := s.Retry(ctx, job.ID); err != nil || n != want {
			t.Fatalf("Retry() = %d, %v; want %d, nil", n, err, want)
		}
	}
	want := []jobs.Status{jobs.StatusPending, jobs.StatusSucceeded, jobs.StatusPending, jobs.StatusPending}
	if got := statuses(t, s, job.ID); !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		id           int64
		wantAttempts int
	}{{reqs[0].ID, 0}, {reqs[1].ID, 5}, {reqs[2].ID, 0}} {
		if _, got := statusOf(t, s, tc.id); got != tc.wantAttempts {
			t.Errorf("request %d attempts = %d, want %d", tc.id, got, tc.wantAttempts)
		}
	}
	if got := linesOf(mustClaim(t, s, job.ID, 10)); !slices.Equal(got, []int{1, 3, 4}) {
		t.Errorf("claimable after retry: lines %v, want [1 3 4]", got)
	}
}

func TestRetryAndCancelRefused(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "refused", chatRequests(2))
	reqs := mustClaim(t, s, job.ID, 1)
	mustRecord(t, s, failPermanently(reqs[0]))
	if _, err := s.Cancel(ctx, job.ID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	for _, tc := range []struct {
		name    string
		call    func(context.Context, int64) (int, error)
		jobID   int64
		wantErr error
	}{
		{"RetryCancelledJob", s.Retry, job.ID, jobs.ErrCancelled},
		{"CancelCancelledJob", s.Cancel, job.ID, jobs.ErrCancelled},
		{"RetryMissingJob", s.Retry, 999, jobs.ErrNotFound},
		{"CancelMissingJob", s.Cancel, 999, jobs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n, err := tc.call(ctx, tc.jobID); n != 0 || !errors.Is(err, tc.wantErr) {
				t.Errorf("got %d, %v; want 0, %v", n, err, tc.wantErr)
			}
		})
	}
	if got, want := statuses(t, s, job.ID), []jobs.Status{jobs.StatusFailed, jobs.StatusCancelled}; !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name   string
		locked bool
		wantN  int
		want   []jobs.Status
	}{
		{"NoLockHolder", false, 3,
			[]jobs.Status{jobs.StatusSucceeded, jobs.StatusCancelled, jobs.StatusCancelled, jobs.StatusCancelled}},
		{"LiveRunKeepsItsRunning", true, 2,
			[]jobs.Status{jobs.StatusSucceeded, jobs.StatusRunning, jobs.StatusCancelled, jobs.StatusCancelled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := mustOpenStore(t)
			job := mustImport(t, s, "cancel", chatRequests(4))
			if tt.locked {
				if err := s.Lock(ctx, job.ID, ownerA, staleAfter, nil); err != nil {
					t.Fatalf("Lock: %v", err)
				}
			}
			reqs := mustClaim(t, s, job.ID, 2)
			mustRecord(t, s, succeed(reqs[0]))
			n, err := s.Cancel(ctx, job.ID)
			if err != nil || n != tt.wantN {
				t.Fatalf("Cancel() = %d, %v; want %d, nil", n, err, tt.wantN)
			}
			if got := statuses(t, s, job.ID); !slices.Equal(got, tt.want) {
				t.Errorf("statuses = %v, want %v", got, tt.want)
			}
			if got, err := s.Job(ctx, "cancel"); err != nil || got.State != jobs.JobCancelled {
				t.Errorf("job state = %q, %v; want %q", got.State, err, jobs.JobCancelled)
			}
			// The live run's in-flight answer is still recorded after the cancel.
			mustRecord(t, s, succeed(reqs[1]))
			wantLast := jobs.StatusCancelled
			if tt.locked {
				wantLast = jobs.StatusSucceeded
			}
			if got, _ := statusOf(t, s, reqs[1].ID); got != wantLast {
				t.Errorf("in-flight request after Record = %s, want %s", got, wantLast)
			}
		})
	}
}
