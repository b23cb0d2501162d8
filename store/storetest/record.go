package storetest

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// recorded is what Records shows of a request after Record.
type recorded struct {
	status   jobs.Status
	attempts int
	result   string        // the result's Content; "" for none
	failure  *jobs.Failure // nil for none
}

// check compares a record with w.
func (w recorded) check(t *testing.T, what string, r jobs.Record) {
	t.Helper()
	content := ""
	if r.Result != nil {
		content = r.Result.Content
	}
	if r.Request.Status != w.status || r.Request.Attempts != w.attempts || (r.Result != nil) != (w.result != "") ||
		content != w.result || !reflect.DeepEqual(r.Failure, w.failure) {
		t.Errorf("%s: %s with %d attempts, result %+v, failure %+v;\nwant %s with %d, result %q, failure %+v",
			what, r.Request.Status, r.Request.Attempts, r.Result, r.Failure, w.status, w.attempts, w.result, w.failure)
	}
}

// testRecordOutcomes records each kind of outcome for a request that
// failed once before, so that an attempt used and one not used differ.
func testRecordOutcomes(t *testing.T, st jobs.Store) {
	later := t0.Add(42 * time.Second)
	bad := &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "top_p out of range",
		Body: []byte(`{"error":{"message":"top_p out of range"}}`), RequestID: "req-400"}
	auth := &jobs.Failure{Class: jobs.ClassAuth, StatusCode: 401, Message: "bad key"}
	slow := &jobs.Failure{Class: jobs.ClassRateLimited, StatusCode: 429, Message: "slow down"}
	tests := []struct {
		name         string
		outcome      func(jobs.Request) jobs.Outcome
		want         recorded
		wantAttempts int // attempts Stats counts, the earlier one with them
	}{
		{"Succeeded", succeed, recorded{jobs.StatusSucceeded, 2, "ok", nil}, 2},
		{"SucceededWithoutUsingAnAttempt", func(r jobs.Request) jobs.Outcome {
			o := succeed(r)
			o.CountAttempt = false
			return o
		}, recorded{jobs.StatusSucceeded, 1, "ok", nil}, 2},
		{"Failed", func(r jobs.Request) jobs.Outcome {
			o := failPermanently(r, bad.Message)
			o.Failure = bad
			return o
		}, recorded{jobs.StatusFailed, 2, "", bad}, 2},
		{"RetryLater", func(r jobs.Request) jobs.Outcome { return rateLimited(r, "slow down", later) },
			recorded{jobs.StatusPending, 2, "", slow}, 2},
		{"FatalUsesNoAttempt", func(r jobs.Request) jobs.Outcome {
			return jobs.Outcome{Request: r, Next: jobs.StatusPending, Failure: auth,
				Attempt: &jobs.Attempt{RequestID: r.ID, Number: 2, StartedAt: t0, StatusCode: 401, Class: jobs.ClassAuth}}
		}, recorded{jobs.StatusPending, 1, "", auth}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := mustImport(t, st, tt.name, chats(2))
			r := mustClaim(t, st, job.ID, 1)[0]
			mustRecord(t, st, rateLimited(r, "first", time.Time{}))
			r = mustClaim(t, st, job.ID, 1)[0]
			mustRecord(t, st, tt.outcome(r))
			recs := mustRecords(t, st, job.ID)
			tt.want.check(t, "line 1", recs[0])
			recorded{jobs.StatusPending, 0, "", nil}.check(t, "line 2 (untouched)", recs[1])
			if got := mustStats(t, st, job.ID).Attempts; got != tt.wantAttempts {
				t.Errorf("Stats.Attempts = %d, want %d", got, tt.wantAttempts)
			}
		})
	}
}

// testRecordExactlyOnce: of the outcomes for one request only one ever
// applies, whatever comes between them; the others change nothing.
func testRecordExactlyOnce(t *testing.T, st jobs.Store) {
	unplain := func(r jobs.Request, text string) jobs.Outcome { // a success that sets more than a plain one
		o := succeed(r)
		o.CountAttempt, o.Result.Content = false, text
		return o
	}
	tests := []struct {
		name string
		// run records outcomes for r, the job's one request, claimed.
		run  func(t *testing.T, jobID int64, r jobs.Request)
		want recorded
	}{
		{"TwoSuccessesInOneBatch", func(t *testing.T, _ int64, r jobs.Request) {
			mustRecord(t, st, succeed(r), succeed(r))
		}, recorded{jobs.StatusSucceeded, 1, "ok", nil}},
		{"FailureThenSuccessInOneBatch", func(t *testing.T, _ int64, r jobs.Request) {
			mustRecord(t, st, failPermanently(r, "bad"), succeed(r))
		}, recorded{jobs.StatusSucceeded, 1, "ok", nil}},
		{"TwoOtherSuccessesInOneBatch", func(t *testing.T, _ int64, r jobs.Request) {
			mustRecord(t, st, unplain(r, "first"), unplain(r, "first"))
		}, recorded{jobs.StatusSucceeded, 0, "first", nil}},
		{"SecondRecordIgnored", func(t *testing.T, _ int64, r jobs.Request) {
			mustRecord(t, st, succeed(r))
			mustRecord(t, st, failPermanently(r, "late"))
			mustRecord(t, st, succeed(r))
		}, recorded{jobs.StatusSucceeded, 1, "ok", nil}},
		{"AfterCancel", func(t *testing.T, jobID int64, r jobs.Request) {
			if _, err := st.Cancel(t.Context(), jobID); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			mustRecord(t, st, succeed(r))
		}, recorded{jobs.StatusCancelled, 0, "", nil}},
		{"AfterRecover", func(t *testing.T, jobID int64, r jobs.Request) {
			if n, err := st.Recover(t.Context(), jobID); err != nil || n != 1 {
				t.Fatalf("Recover() = %d, %v; want 1", n, err)
			}
			mustRecord(t, st, succeed(r), failPermanently(r, "late"))
		}, recorded{jobs.StatusPending, 0, "", nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := mustImport(t, st, tt.name, chats(1))
			tt.run(t, job.ID, mustClaim(t, st, job.ID, 1)[0])
			tt.want.check(t, "line 1", mustRecords(t, st, job.ID)[0])
			stats := mustStats(t, st, job.ID)
			wantAttempts := 0
			if tt.want.result != "" {
				wantAttempts = 1
			}
			if stats.Attempts != wantAttempts || len(stats.Errors) != 0 {
				t.Errorf("Stats: %d attempts, errors %+v; want %d attempts, no errors", stats.Attempts, stats.Errors, wantAttempts)
			}
		})
	}
}

// testRecordManySomeNoLongerRunning records one batch of 150 outcomes in
// which some requests were recorded by an earlier batch, one is named
// twice, and failures sit between the successes: exactly the outcomes
// whose request was still running apply, each once.
func testRecordManySomeNoLongerRunning(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "many", chats(150))
	reqs := mustClaim(t, st, job.ID, 150)
	mustRecord(t, st, succeed(reqs[10]), failPermanently(reqs[70], "earlier"))
	failing := func(i int) bool { return i%25 == 3 }
	var batch []jobs.Outcome
	for i, r := range reqs {
		if failing(i) {
			batch = append(batch, failPermanently(r, "bad"))
		} else {
			batch = append(batch, succeed(r))
		}
	}
	batch = append(batch, succeed(reqs[100]), failPermanently(reqs[10], "late"))
	mustRecord(t, st, batch...)
	earlier := &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "earlier"}
	for i, r := range mustRecords(t, st, job.ID) {
		w := recorded{jobs.StatusSucceeded, 1, "ok", nil}
		switch {
		case i == 70:
			w = recorded{jobs.StatusFailed, 1, "", earlier}
		case failing(i):
			w = recorded{jobs.StatusFailed, 1, "", &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "bad"}}
		}
		w.check(t, "request "+r.Request.CustomID, r)
	}
	if got := mustStats(t, st, job.ID).Attempts; got != 150 {
		t.Errorf("Stats.Attempts = %d, want 150 (one per request)", got)
	}
}

// testRecordRejectsWholeBatch: an outcome Record refuses rolls back every
// outcome of its batch, and the batch without it then records.
func testRecordRejectsWholeBatch(t *testing.T, st jobs.Store) {
	tests := []struct {
		name    string
		bad     func(jobs.Request) jobs.Outcome
		wantErr error // nil: any error
	}{
		{"NextRunning", func(r jobs.Request) jobs.Outcome { return jobs.Outcome{Request: r, Next: jobs.StatusRunning} },
			jobs.ErrBadTransition},
		{"UnknownStatus", func(r jobs.Request) jobs.Outcome { return jobs.Outcome{Request: r, Next: "done"} },
			jobs.ErrBadTransition},
		{"SucceededWithoutResult", func(r jobs.Request) jobs.Outcome {
			o := succeed(r)
			o.Result = nil
			return o
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := mustImport(t, st, tt.name, chats(2))
			reqs := mustClaim(t, st, job.ID, 2)
			err := st.Record(t.Context(), []jobs.Outcome{succeed(reqs[0]), tt.bad(reqs[1])})
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("Record() error = %v, want %v", err, errOr(tt.wantErr, "an error"))
			}
			want := []jobs.Status{jobs.StatusRunning, jobs.StatusRunning}
			if got := statuses(t, st, job.ID); !slices.Equal(got, want) || mustStats(t, st, job.ID).Attempts != 0 {
				t.Errorf("after a refused Record: statuses %v, want %v and no attempt", got, want)
			}
			mustRecord(t, st, succeed(reqs[0]), succeed(reqs[1]))
			if got := mustStats(t, st, job.ID).Counts[jobs.StatusSucceeded]; got != 2 {
				t.Errorf("succeeded after a good Record = %d, want 2", got)
			}
		})
	}
}

// errOr is err, or what when err is nil, for a message.
func errOr(err error, what string) any {
	if err == nil {
		return what
	}
	return err
}

// testRecover: a dead run's running requests go back to pending with
// their attempt counts as they were, for this job only.
func testRecover(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "orphans", chats(4))
	other := mustImport(t, st, "other", chats(1))
	first := mustClaim(t, st, job.ID, 1)
	mustRecord(t, st, rateLimited(first[0], "slow", time.Time{}))
	mustClaim(t, st, job.ID, 3)
	mustClaim(t, st, other.ID, 1)
	for _, want := range []int{3, 0} {
		if n, err := st.Recover(t.Context(), job.ID); err != nil || n != want {
			t.Fatalf("Recover() = %d, %v; want %d, nil", n, err, want)
		}
	}
	if got, want := statuses(t, st, job.ID), slices.Repeat([]jobs.Status{jobs.StatusPending}, 4); !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if got, want := attemptCounts(t, st, job.ID), []int{1, 0, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("attempts = %v, want %v (recovering uses none)", got, want)
	}
	if got := mustStats(t, st, other.ID).Counts[jobs.StatusRunning]; got != 1 {
		t.Errorf("other job's running requests = %d, want 1 (Recover is per job)", got)
	}
	if got := linesOf(mustClaim(t, st, job.ID, 10)); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Errorf("claimed after Recover: lines %v, want [1 2 3 4]", got)
	}
}
