package sqlite

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

func TestCancelDuringRun(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "c", chatRequests(6))
	owner := jobs.LockOwner{Token: "run-1", PID: 1, Host: "h"}
	if err := s.Lock(ctx, job.ID, owner, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.Claim(ctx, job.ID, 4, time.Now())
	if err != nil || len(claimed) != 4 {
		t.Fatalf("Claim: %d, %v", len(claimed), err)
	}
	if err := s.Heartbeat(ctx, job.ID, owner); err != nil {
		t.Fatalf("Heartbeat of an active job: %v", err)
	}
	n, err := s.Cancel(ctx, job.ID)
	if err != nil || n != 2 {
		t.Fatalf("Cancel = %d, %v; want the 2 pending cancelled (the 4 running are the run's)", n, err)
	}
	if err := s.Heartbeat(ctx, job.ID, owner); !errors.Is(err, jobs.ErrCancelled) {
		t.Fatalf("Heartbeat after Cancel = %v, want ErrCancelled", err)
	}
	// The run records what it had in flight: one answer, one retry, and
	// hands back two it never sent.
	retry := jobs.Outcome{Request: claimed[1], Next: jobs.StatusPending, CountAttempt: true,
		Attempt: &jobs.Attempt{RequestID: claimed[1].ID, Number: 1}, Failure: &jobs.Failure{Class: jobs.ClassServer, StatusCode: 500}}
	ok := jobs.Outcome{Request: claimed[0], Next: jobs.StatusSucceeded, CountAttempt: true,
		Attempt: &jobs.Attempt{RequestID: claimed[0].ID, Number: 1}, Result: &jobs.Result{StatusCode: 200, Raw: []byte(`{}`)}}
	back := []jobs.Outcome{{Request: claimed[2], Next: jobs.StatusPending}, {Request: claimed[3], Next: jobs.StatusPending}}
	if err := s.Record(ctx, append([]jobs.Outcome{ok, retry}, back...)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CancelLeftovers(ctx, job.ID); err != nil || n != 3 {
		t.Fatalf("CancelLeftovers = %d, %v; want the 3 put back pending", n, err)
	}
	stats, err := s.Stats(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c := stats.Counts; c[jobs.StatusSucceeded] != 1 || c[jobs.StatusCancelled] != 5 || c[jobs.StatusPending]+c[jobs.StatusRunning] != 0 {
		t.Errorf("counts %v, want 1 succeeded and 5 cancelled", c)
	}
	active := mustImport(t, s, "a", chatRequests(2))
	if n, err := s.CancelLeftovers(ctx, active.ID); err != nil || n != 0 {
		t.Errorf("CancelLeftovers of an active job = %d, %v; want nothing", n, err)
	}
}

func TestClearWaits(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "w", chatRequests(3))
	claimed, err := s.Claim(ctx, job.ID, 3, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	var outs []jobs.Outcome
	for _, r := range claimed {
		outs = append(outs, jobs.Outcome{Request: r, Next: jobs.StatusPending, NotBefore: later, CountAttempt: true,
			Attempt: &jobs.Attempt{RequestID: r.ID, Number: 1}, Failure: &jobs.Failure{Class: jobs.ClassNetwork}})
	}
	if err := s.Record(ctx, outs); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Claim(ctx, job.ID, 3, time.Now()); len(got) != 0 {
		t.Fatalf("claimed %d requests waiting on a backoff", len(got))
	}
	if n, err := s.ClearWaits(ctx, job.ID); err != nil || n != 3 {
		t.Fatalf("ClearWaits = %d, %v; want 3", n, err)
	}
	if got, _ := s.Claim(ctx, job.ID, 3, time.Now()); len(got) != 3 {
		t.Errorf("after ClearWaits claimed %d, want 3", len(got))
	}
}
