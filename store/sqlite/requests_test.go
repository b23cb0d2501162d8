package sqlite

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

func TestClaim(t *testing.T) {
	ctx := context.Background()

	t.Run("AtMostNInIDOrder", func(t *testing.T) {
		s := mustOpenStore(t)
		job := mustImport(t, s, "claim", chatRequests(5))
		for _, tc := range []struct {
			n         int
			wantLines []int
		}{{0, nil}, {-1, nil}, {3, []int{1, 2, 3}}, {3, []int{4, 5}}, {3, nil}} {
			got := mustClaim(t, s, job.ID, tc.n)
			if lines := linesOf(got); !slices.Equal(lines, tc.wantLines) {
				t.Fatalf("Claim(%d) lines = %v, want %v", tc.n, lines, tc.wantLines)
			}
			for i, r := range got {
				if i > 0 && r.ID <= got[i-1].ID {
					t.Errorf("ids not ascending: %d after %d", r.ID, got[i-1].ID)
				}
				if st, _ := statusOf(t, s, r.ID); st != jobs.StatusRunning || r.Status != jobs.StatusRunning {
					t.Errorf("request %d status = %s (returned %s), want running", r.ID, st, r.Status)
				}
			}
		}
	})

	t.Run("NotBeforeInTheFuture", func(t *testing.T) {
		s := mustOpenStore(t)
		c := clockOf(s)
		job := mustImport(t, s, "later", chatRequests(2))
		first := mustClaim(t, s, job.ID, 1)
		later := t0.Add(30 * time.Second)
		mustRecord(t, s, jobs.Outcome{Request: first[0], Next: jobs.StatusPending, NotBefore: later, CountAttempt: true,
			Attempt: &jobs.Attempt{Number: 1, StartedAt: t0, StatusCode: 429, Class: jobs.ClassRateLimited}})
		for _, tc := range []struct {
			name      string
			advance   time.Duration
			wantLines []int
		}{
			{"BeforeNotBefore", 0, []int{2}},
			{"OneMillisecondEarly", 30*time.Second - time.Millisecond, nil},
			{"AtNotBefore", time.Millisecond, []int{1}},
		} {
			c.Advance(tc.advance)
			got := mustClaim(t, s, job.ID, 10)
			if lines := linesOf(got); !slices.Equal(lines, tc.wantLines) {
				t.Errorf("%s: claimed lines %v, want %v", tc.name, lines, tc.wantLines)
			}
		}
	})

	t.Run("CancelledJob", func(t *testing.T) {
		s := mustOpenStore(t)
		job := mustImport(t, s, "cancelled", chatRequests(3))
		// A live run holds one request when the job is cancelled, then dies:
		// Recover hands that request back as pending in a cancelled job.
		if err := s.Lock(ctx, job.ID, ownerA, staleAfter, nil); err != nil {
			t.Fatalf("Lock: %v", err)
		}
		mustClaim(t, s, job.ID, 1)
		if _, err := s.Cancel(ctx, job.ID); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		if n, err := s.Recover(ctx, job.ID); err != nil || n != 1 {
			t.Fatalf("Recover() = %d, %v; want 1, nil", n, err)
		}
		if got := mustClaim(t, s, job.ID, 10); len(got) != 0 {
			t.Errorf("Claim on a cancelled job = lines %v, want none", linesOf(got))
		}
		if n, _, err := s.Waiting(ctx, job.ID); err != nil || n != 0 {
			t.Errorf("Waiting on a cancelled job = %d, %v; want 0, nil", n, err)
		}
		want := []jobs.Status{jobs.StatusPending, jobs.StatusCancelled, jobs.StatusCancelled}
		if got := statuses(t, s, job.ID); !slices.Equal(got, want) {
			t.Errorf("statuses = %v, want %v", got, want)
		}
	})

	t.Run("ConcurrentClaimsNeverShare", func(t *testing.T) {
		const total, workers = 1000, 2
		s := mustOpenStore(t)
		job := mustImport(t, s, "race", chatRequests(total))
		claimed := make([][]int64, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for {
					reqs, err := s.Claim(ctx, job.ID, 7, t0)
					if err != nil {
						t.Errorf("worker %d: Claim: %v", w, err)
						return
					}
					if len(reqs) == 0 {
						return
					}
					for _, r := range reqs {
						claimed[w] = append(claimed[w], r.ID)
					}
				}
			})
		}
		wg.Wait()
		seen := map[int64]int{}
		for w, ids := range claimed {
			for _, id := range ids {
				if prev, dup := seen[id]; dup {
					t.Fatalf("request %d handed to worker %d and worker %d", id, prev, w)
				}
				seen[id] = w
			}
		}
		if len(seen) != total {
			t.Errorf("claimed %d distinct requests, want %d", len(seen), total)
		}
		if n := queryInt(t, s, `SELECT count(*) FROM requests WHERE status = 'running'`); n != total {
			t.Errorf("running = %d, want %d", n, total)
		}
	})
}

// reqRow is what Record leaves in a request's row and its related tables.
type reqRow struct {
	Status               jobs.Status
	Attempts             int
	NotBefore            int64
	Class, Message, Body string
	Code                 int
	Results, AttemptRows int
}

func readRow(tb testing.TB, s *Store, id int64) reqRow {
	tb.Helper()
	var r reqRow
	err := s.w.QueryRow(`SELECT status, attempts, not_before, coalesce(error_class, ''), coalesce(error_message, ''),
		coalesce(error_body, ''), coalesce(error_status_code, 0),
		(SELECT count(*) FROM results WHERE request_id = r.id), (SELECT count(*) FROM attempts WHERE request_id = r.id)
		FROM requests r WHERE id = ?`, id).
		Scan(&r.Status, &r.Attempts, &r.NotBefore, &r.Class, &r.Message, &r.Body, &r.Code, &r.Results, &r.AttemptRows)
	if err != nil {
		tb.Fatalf("read request %d: %v", id, err)
	}
	return r
}

func TestRecord(t *testing.T) {
	later := t0.Add(42 * time.Second)
	ok := func(r jobs.Request) jobs.Outcome {
		return jobs.Outcome{Request: r, Next: jobs.StatusSucceeded, CountAttempt: true,
			Attempt: &jobs.Attempt{Number: 3, StartedAt: t0, Duration: 1500 * time.Millisecond, StatusCode: 200},
			Result:  &jobs.Result{StatusCode: 200, Raw: []byte(`{"id":"r1"}`), Latency: 1500 * time.Millisecond, CreatedAt: t0}}
	}
	fail := &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "top_p out of range",
		Body: []byte(`{"error":{"message":"top_p out of range"}}`)}
	tests := []struct {
		name     string
		outcomes func(jobs.Request) []jobs.Outcome
		want     reqRow
	}{
		{"Succeeded", func(r jobs.Request) []jobs.Outcome { return []jobs.Outcome{ok(r)} },
			reqRow{Status: jobs.StatusSucceeded, Attempts: 3, Results: 1, AttemptRows: 1}},
		{"SucceededTwice", func(r jobs.Request) []jobs.Outcome { return []jobs.Outcome{ok(r), ok(r)} },
			reqRow{Status: jobs.StatusSucceeded, Attempts: 3, Results: 1, AttemptRows: 1}},
		{"Failed", func(r jobs.Request) []jobs.Outcome {
			return []jobs.Outcome{{Request: r, Next: jobs.StatusFailed, CountAttempt: true, Failure: fail,
				Attempt: &jobs.Attempt{Number: 3, StartedAt: t0, StatusCode: 400, Class: fail.Class, Message: fail.Message}}}
		}, reqRow{Status: jobs.StatusFailed, Attempts: 3, Class: "invalid_request", Code: 400,
			Message: "top_p out of range", Body: `{"error":{"message":"top_p out of range"}}`, AttemptRows: 1}},
		{"RetryLater", func(r jobs.Request) []jobs.Outcome {
			return []jobs.Outcome{{Request: r, Next: jobs.StatusPending, CountAttempt: true, NotBefore: later,
				Failure: &jobs.Failure{Class: jobs.ClassRateLimited, StatusCode: 429, Message: "slow down"},
				Attempt: &jobs.Attempt{Number: 3, StartedAt: t0, StatusCode: 429, Class: jobs.ClassRateLimited}}}
		}, reqRow{Status: jobs.StatusPending, Attempts: 3, NotBefore: later.UnixMilli(), Class: "rate_limited",
			Code: 429, Message: "slow down", AttemptRows: 1}},
		{"Interrupted", func(r jobs.Request) []jobs.Outcome {
			return []jobs.Outcome{{Request: r, Next: jobs.StatusPending}}
		}, reqRow{Status: jobs.StatusPending, Attempts: 2}},
		{"FatalKeepsAttemptCount", func(r jobs.Request) []jobs.Outcome {
			return []jobs.Outcome{{Request: r, Next: jobs.StatusPending,
				Failure: &jobs.Failure{Class: jobs.ClassAuth, StatusCode: 401, Message: "bad key"},
				Attempt: &jobs.Attempt{Number: 3, StartedAt: t0, StatusCode: 401, Class: jobs.ClassAuth}}}
		}, reqRow{Status: jobs.StatusPending, Attempts: 2, Class: "auth", Code: 401, Message: "bad key", AttemptRows: 1}},
		{"NotRunningAnyMore", func(r jobs.Request) []jobs.Outcome {
			return []jobs.Outcome{ok(r), {Request: r, Next: jobs.StatusFailed, CountAttempt: true, Failure: fail,
				Attempt: &jobs.Attempt{Number: 4, StartedAt: t0, StatusCode: 400, Class: fail.Class}}}
		}, reqRow{Status: jobs.StatusSucceeded, Attempts: 3, Results: 1, AttemptRows: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t)
			job := mustImport(t, s, "record", chatRequests(2))
			// Two earlier attempts, so that "unchanged" and "+1" differ from 0 and 1.
			mustExec(t, s, `UPDATE requests SET attempts = 2`)
			req := mustClaim(t, s, job.ID, 1)[0]
			for _, o := range tt.outcomes(req) {
				mustRecord(t, s, o) // one transaction each: the second sees the first
			}
			if got := readRow(t, s, req.ID); got != tt.want {
				t.Errorf("after Record:\n got %+v\nwant %+v", got, tt.want)
			}
			if got, want := readRow(t, s, req.ID+1), (reqRow{Status: jobs.StatusPending, Attempts: 2}); got != want {
				t.Errorf("other request: got %+v, want %+v", got, want)
			}
		})
	}
}

func TestRecordAttemptRow(t *testing.T) {
	s := mustOpenStore(t)
	job := mustImport(t, s, "attempt", chatRequests(1))
	req := mustClaim(t, s, job.ID, 1)[0]
	mustRecord(t, s, jobs.Outcome{Request: req, Next: jobs.StatusPending, CountAttempt: true, NotBefore: t0.Add(time.Second),
		Attempt: &jobs.Attempt{Number: 1, StartedAt: t0, Duration: 2345 * time.Millisecond, StatusCode: 503,
			Class: jobs.ClassServer, Message: "upstream overloaded"}})
	var got jobs.Attempt
	var started, durMS int64
	var class string
	err := s.w.QueryRow(`SELECT request_id, number, started_at, duration_ms, status_code, error_class, message
		FROM attempts WHERE job_id = ?`, job.ID).Scan(&got.RequestID, &got.Number, &started, &durMS, &got.StatusCode, &class, &got.Message)
	if err != nil {
		t.Fatalf("read attempt: %v", err)
	}
	got.StartedAt, got.Duration, got.Class = time.UnixMilli(started).UTC(), msDuration(durMS), jobs.ErrorClass(class)
	want := jobs.Attempt{RequestID: req.ID, Number: 1, StartedAt: t0, Duration: 2345 * time.Millisecond, StatusCode: 503,
		Class: jobs.ClassServer, Message: "upstream overloaded"}
	if got != want {
		t.Errorf("attempt row = %+v, want %+v", got, want)
	}
}

// TestRecordRejectsBatch checks that an outcome Record refuses rolls back
// every outcome of its batch, including the valid ones before it.
func TestRecordRejectsBatch(t *testing.T) {
	tests := []struct {
		name    string
		bad     func(jobs.Request) jobs.Outcome
		wantErr error // nil: any error
	}{
		{"NextRunning", func(r jobs.Request) jobs.Outcome { return jobs.Outcome{Request: r, Next: jobs.StatusRunning} },
			jobs.ErrBadTransition},
		{"UnknownStatus", func(r jobs.Request) jobs.Outcome {
			return jobs.Outcome{Request: r, Next: jobs.Status("done")}
		}, jobs.ErrBadTransition},
		{"SucceededWithoutResult", func(r jobs.Request) jobs.Outcome {
			o := succeed(r)
			o.Result = nil
			return o
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpenStore(t)
			job := mustImport(t, s, "bad", chatRequests(2))
			reqs := mustClaim(t, s, job.ID, 2)
			err := s.Record(context.Background(), []jobs.Outcome{succeed(reqs[0]), tt.bad(reqs[1])})
			if err == nil {
				t.Fatal("Record() error = nil, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Record() error = %v, want %v", err, tt.wantErr)
			}
			for _, r := range reqs {
				if got, want := readRow(t, s, r.ID), (reqRow{Status: jobs.StatusRunning}); got != want {
					t.Errorf("request %d after rolled-back Record = %+v, want %+v", r.ID, got, want)
				}
			}
		})
	}
}

func TestWaiting(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "waiting", chatRequests(4))
	reqs := mustClaim(t, s, job.ID, 3)
	retry := func(r jobs.Request, after time.Duration) jobs.Outcome {
		return jobs.Outcome{Request: r, Next: jobs.StatusPending, NotBefore: t0.Add(after)}
	}
	for _, tc := range []struct {
		name     string
		change   func()
		wantN    int
		wantNext time.Time
	}{
		{"UnclaimedAreDueNow", func() {}, 1, time.Time{}},
		{"EarliestNotBefore", func() {
			mustRecord(t, s, retry(reqs[0], 10*time.Second), retry(reqs[1], 5*time.Second), retry(reqs[2], 20*time.Second))
			mustClaim(t, s, job.ID, 1) // takes the one due now
		}, 3, t0.Add(5 * time.Second)},
		{"CancelledJob", func() {
			if _, err := s.Cancel(ctx, job.ID); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
		}, 0, time.Time{}},
	} {
		tc.change()
		n, next, err := s.Waiting(ctx, job.ID)
		if err != nil || n != tc.wantN || !next.Equal(tc.wantNext) {
			t.Errorf("%s: Waiting() = %d, %v, %v; want %d, %v, nil", tc.name, n, next, err, tc.wantN, tc.wantNext)
		}
	}
}

func TestRecover(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "orphans", chatRequests(4))
	other := mustImport(t, s, "other", chatRequests(1))
	mustExec(t, s, `UPDATE requests SET attempts = line`)
	reqs := mustClaim(t, s, job.ID, 3)
	mustClaim(t, s, other.ID, 1)
	for _, want := range []int{3, 0} {
		if n, err := s.Recover(ctx, job.ID); err != nil || n != want {
			t.Fatalf("Recover() = %d, %v; want %d, nil", n, err, want)
		}
	}
	for _, r := range reqs {
		if st, attempts := statusOf(t, s, r.ID); st != jobs.StatusPending || attempts != r.Line {
			t.Errorf("request %d = %s with %d attempts, want pending with %d", r.ID, st, attempts, r.Line)
		}
	}
	if n := queryInt(t, s, `SELECT count(*) FROM requests WHERE job_id = ? AND status = 'running'`, other.ID); n != 1 {
		t.Errorf("other job's running requests = %d, want 1 (Recover is per job)", n)
	}
}

func linesOf(reqs []jobs.Request) []int {
	var lines []int
	for _, r := range reqs {
		lines = append(lines, r.Line)
	}
	return lines
}

// TestRecordManySomeNoLongerRunning records one batch of 150 outcomes, more
// than one statement's worth of plain successes, in which some requests
// were cancelled or recorded by an earlier batch, one request is named
// twice and failures sit between the successes: exactly the outcomes whose
// request was still running apply, each once.
func TestRecordManySomeNoLongerRunning(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "many", chatRequests(150))
	reqs := mustClaim(t, s, job.ID, 150)
	mustRecord(t, s, succeed(reqs[10]))                                                  // recorded already
	mustExec(t, s, `UPDATE requests SET status = 'cancelled' WHERE id = ?`, reqs[70].ID) // cancelled meanwhile
	var outcomes []jobs.Outcome
	for i, r := range reqs {
		if i%25 == 3 {
			outcomes = append(outcomes, failPermanently(r))
		} else {
			outcomes = append(outcomes, succeed(r))
		}
	}
	outcomes = append(outcomes, succeed(reqs[100])) // the same request twice in one batch
	if err := s.Record(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		want := reqRow{Status: jobs.StatusSucceeded, Attempts: 1, Results: 1, AttemptRows: 1}
		switch {
		case i == 70:
			want = reqRow{Status: jobs.StatusCancelled}
		case i%25 == 3:
			want = reqRow{Status: jobs.StatusFailed, Attempts: 1, Class: "invalid_request", Code: 400, AttemptRows: 1}
		}
		got := readRow(t, s, r.ID)
		got.Message, got.Body = "", ""
		if got != want {
			t.Errorf("request %d (index %d) = %+v, want %+v", r.ID, i, got, want)
		}
	}
}

// TestRecordFailsHalfway makes the UPDATE of plain successes fail halfway
// through a chunk (a trigger aborts the statement, rolls back the
// transaction, or fails it leaving the rows before it changed, as the
// update's OR FAIL would): Record returns the error, every request stays
// running, and the same outcomes then record on the same store.
func TestRecordFailsHalfway(t *testing.T) {
	for _, action := range []string{"ABORT", "ROLLBACK", "FAIL"} {
		t.Run(action, func(t *testing.T) {
			ctx := context.Background()
			s := mustOpenStore(t)
			job := mustImport(t, s, "savepoint", chatRequests(100))
			reqs := mustClaim(t, s, job.ID, 100)
			mustExec(t, s, `CREATE TEMP TRIGGER boom BEFORE UPDATE OF status ON requests
				WHEN old.id = `+strconv.FormatInt(reqs[40].ID, 10)+` AND new.status = 'succeeded'
				BEGIN SELECT RAISE(`+action+`, 'boom'); END`)
			var outcomes []jobs.Outcome
			for _, r := range reqs {
				outcomes = append(outcomes, succeed(r))
			}
			if err := s.Record(ctx, outcomes); err == nil {
				t.Fatal("Record with the trigger in place = nil error, want boom")
			}
			for _, r := range reqs {
				if got, want := readRow(t, s, r.ID), (reqRow{Status: jobs.StatusRunning}); got != want {
					t.Fatalf("request %d after the failed Record = %+v, want %+v", r.ID, got, want)
				}
			}
			mustExec(t, s, `DROP TRIGGER temp.boom`)
			mustRecord(t, s, outcomes...)
			for _, r := range reqs {
				if got := readRow(t, s, r.ID); got.Status != jobs.StatusSucceeded || got.Results != 1 {
					t.Fatalf("request %d after Record = %+v, want succeeded with one result", r.ID, got)
				}
			}
		})
	}
}

// TestClaimFailsHalfway makes the claim's UPDATE fail halfway through its
// requests (a trigger aborts it, rolls back the transaction, or fails it
// leaving the rows before it changed): Claim returns the error and hands
// out nothing, every request stays pending, and the next claim gets them.
func TestClaimFailsHalfway(t *testing.T) {
	for _, action := range []string{"ABORT", "ROLLBACK", "FAIL"} {
		t.Run(action, func(t *testing.T) {
			ctx := context.Background()
			s := mustOpenStore(t)
			job := mustImport(t, s, "claim", chatRequests(100))
			mustExec(t, s, `CREATE TEMP TRIGGER boom BEFORE UPDATE OF status ON requests
				WHEN old.line = 41 AND new.status = 'running'
				BEGIN SELECT RAISE(`+action+`, 'boom'); END`)
			if reqs, err := s.Claim(ctx, job.ID, 100, t0); err == nil || len(reqs) != 0 {
				t.Fatalf("Claim with the trigger in place = %d requests, %v; want none and boom", len(reqs), err)
			}
			if got := queryInt(t, s, `SELECT count(*) FROM requests WHERE status = 'pending'`); got != 100 {
				t.Fatalf("pending requests after the failed Claim = %d, want 100", got)
			}
			mustExec(t, s, `DROP TRIGGER temp.boom`)
			if got := len(mustClaim(t, s, job.ID, 100)); got != 100 {
				t.Fatalf("Claim after the failure = %d requests, want 100", got)
			}
		})
	}
}
