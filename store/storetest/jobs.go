package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

func testJobAndJobs(t *testing.T, st jobs.Store) {
	if _, err := st.Job(t.Context(), "missing"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("Job(missing) error = %v, want ErrNotFound", err)
	}
	if list, err := st.Jobs(t.Context()); err != nil || len(list) != 0 {
		t.Errorf("Jobs() of an empty store = %+v, %v; want none", list, err)
	}
	a := mustImport(t, st, "a", chats(3))
	b := mustImport(t, st, "b", chats(1))
	mustRecord(t, st, succeed(mustClaim(t, st, a.ID, 2)[0]))
	list, err := st.Jobs(t.Context())
	if err != nil {
		t.Fatalf("Jobs: %v", err)
	}
	if len(list) != 2 || list[0].ID != a.ID || list[0].Name != "a" || list[1].ID != b.ID || list[1].Total != 1 {
		t.Fatalf("Jobs() = %+v, want a then b", list)
	}
	if got, want := list[0].Counts, counts(1, 1, 1, 0, 0); !sameCounts(got, want) {
		t.Errorf("a counts = %v, want %v", got, want)
	}
	if got, want := list[1].Counts, counts(1, 0, 0, 0, 0); !sameCounts(got, want) {
		t.Errorf("b counts = %v, want %v", got, want)
	}
	if got := mustJob(t, st, "b"); got.ID != b.ID || got.Name != "b" || got.Total != 1 {
		t.Errorf("Job(b) = %+v, want job %d", got, b.ID)
	}
}

// testRetry: failed requests go back to pending with fresh attempt counts;
// nothing else changes, and the attempts made stay counted.
func testRetry(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "retry", chats(4))
	reqs := mustClaim(t, st, job.ID, 3)
	mustRecord(t, st, failPermanently(reqs[0], "bad"), succeed(reqs[1]), failPermanently(reqs[2], "bad"))
	for _, want := range []int{2, 0} {
		if n, err := st.Retry(t.Context(), job.ID); err != nil || n != want {
			t.Fatalf("Retry() = %d, %v; want %d, nil", n, err, want)
		}
	}
	want := []jobs.Status{jobs.StatusPending, jobs.StatusSucceeded, jobs.StatusPending, jobs.StatusPending}
	if got := statuses(t, st, job.ID); !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if got, want := attemptCounts(t, st, job.ID), []int{0, 1, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("attempts = %v, want %v", got, want)
	}
	if got := mustStats(t, st, job.ID).Attempts; got != 3 {
		t.Errorf("Stats.Attempts = %d, want the 3 made", got)
	}
	if got := linesOf(mustClaim(t, st, job.ID, 10)); !slices.Equal(got, []int{1, 3, 4}) {
		t.Errorf("claimable after Retry: lines %v, want [1 3 4]", got)
	}
}

func testRetryAndCancelOfCancelledJob(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "refused", chats(2))
	mustRecord(t, st, failPermanently(mustClaim(t, st, job.ID, 1)[0], "bad"))
	if n, err := st.Cancel(t.Context(), job.ID); err != nil || n != 1 {
		t.Fatalf("Cancel() = %d, %v; want 1", n, err)
	}
	for _, tc := range []struct {
		name string
		call func(jobs.Store, context.Context, int64) (int, error)
	}{{"Retry", jobs.Store.Retry}, {"Cancel", jobs.Store.Cancel}} {
		if n, err := tc.call(st, t.Context(), job.ID); n != 0 || !errors.Is(err, jobs.ErrCancelled) {
			t.Errorf("%s of a cancelled job = %d, %v; want 0, ErrCancelled", tc.name, n, err)
		}
	}
	if got, want := statuses(t, st, job.ID), []jobs.Status{jobs.StatusFailed, jobs.StatusCancelled}; !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
}

// testCancelWithoutRun: with no run holding the job, Cancel cancels what
// is pending and what a dead run left running, and nothing is recorded
// for it afterwards.
func testCancelWithoutRun(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "cancel", chats(4))
	reqs := mustClaim(t, st, job.ID, 2)
	mustRecord(t, st, succeed(reqs[0]))
	if n, err := st.Cancel(t.Context(), job.ID); err != nil || n != 3 {
		t.Fatalf("Cancel() = %d, %v; want 3", n, err)
	}
	mustRecord(t, st, succeed(reqs[1])) // too late
	want := []jobs.Status{jobs.StatusSucceeded, jobs.StatusCancelled, jobs.StatusCancelled, jobs.StatusCancelled}
	if got := statuses(t, st, job.ID); !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if got := mustJob(t, st, "cancel").State; got != jobs.JobCancelled {
		t.Errorf("job state = %q, want %q", got, jobs.JobCancelled)
	}
	if n, _, err := st.Waiting(t.Context(), job.ID); err != nil || n != 0 {
		t.Errorf("Waiting() of a cancelled job = %d, %v; want 0", n, err)
	}
}

// testCancelDuringRun: a live run keeps what it has in flight and records
// it; its heartbeat learns of the cancel; what it hands back is cancelled
// as leftovers once it stops.
func testCancelDuringRun(t *testing.T, st jobs.Store) {
	job := lockedJob(t, st, "during")
	more := mustImport(t, st, "more", chats(2))
	claimed := mustClaim(t, st, job.ID, 2)
	if n, err := st.Cancel(t.Context(), job.ID); err != nil || n != 0 {
		t.Fatalf("Cancel() = %d, %v; want 0 (both requests are the run's)", n, err)
	}
	if err := st.Heartbeat(t.Context(), job.ID, ownerA); !errors.Is(err, jobs.ErrCancelled) {
		t.Fatalf("Heartbeat after Cancel = %v, want ErrCancelled", err)
	}
	mustRecord(t, st, succeed(claimed[0]), rateLimited(claimed[1], "slow", time.Time{}))
	if got, want := statuses(t, st, job.ID), []jobs.Status{jobs.StatusSucceeded, jobs.StatusPending}; !slices.Equal(got, want) {
		t.Errorf("statuses after the run recorded = %v, want %v", got, want)
	}
	if got := mustClaim(t, st, job.ID, 10); len(got) != 0 {
		t.Errorf("Claim of a cancelled job = lines %v, want none", linesOf(got))
	}
	if n, err := st.CancelLeftovers(t.Context(), more.ID); err != nil || n != 0 {
		t.Errorf("CancelLeftovers of an active job = %d, %v; want 0", n, err)
	}
	if n, err := st.CancelLeftovers(t.Context(), job.ID); err != nil || n != 1 {
		t.Errorf("CancelLeftovers() = %d, %v; want 1", n, err)
	}
	if got, want := statuses(t, st, job.ID), []jobs.Status{jobs.StatusSucceeded, jobs.StatusCancelled}; !slices.Equal(got, want) {
		t.Errorf("statuses after CancelLeftovers = %v, want %v", got, want)
	}
	if got, want := statuses(t, st, more.ID), []jobs.Status{jobs.StatusPending, jobs.StatusPending}; !slices.Equal(got, want) {
		t.Errorf("the active job's statuses = %v, want %v", got, want)
	}
}

func testClearWaits(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "waits", chats(4))
	later := t0.Add(time.Hour)
	var outs []jobs.Outcome
	for _, r := range mustClaim(t, st, job.ID, 3) {
		outs = append(outs, rateLimited(r, "slow", later))
	}
	mustRecord(t, st, outs...)
	mustClaim(t, st, job.ID, 1) // line 4, never tried
	if got := mustClaim(t, st, job.ID, 10); len(got) != 0 {
		t.Fatalf("claimed lines %v waiting on a backoff", linesOf(got))
	}
	for _, want := range []int{3, 0} {
		if n, err := st.ClearWaits(t.Context(), job.ID); err != nil || n != want {
			t.Fatalf("ClearWaits() = %d, %v; want %d", n, err, want)
		}
	}
	if got := linesOf(mustClaim(t, st, job.ID, 10)); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("claimed lines %v after ClearWaits, want [1 2 3]", got)
	}
}

func testSettingsAndEndRun(t *testing.T, st jobs.Store) {
	first := jobs.Settings{BaseURL: "http://127.0.0.1:9/v1", Shape: map[string][]string{"model": {"m-v3"}}}
	job, err := st.Import(t.Context(), jobs.Job{Name: "set", Source: "set.jsonl", Settings: first}, &source{reqs: chats(1)})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if got := mustJob(t, st, "set"); !reflect.DeepEqual(got.Settings, first) || got.LastEnd != "" || !got.LastEndAt.IsZero() {
		t.Errorf("Job() = settings %+v, last end %q at %v; want %+v and no end", got.Settings, got.LastEnd, got.LastEndAt, first)
	}
	next := jobs.Settings{BaseURL: "https://api.example/v1", Shape: map[string][]string{"param": {"a=1", "b=2"}},
		Prices: &jobs.Prices{Currency: "USD", ByModel: map[string]jobs.Price{"m-v3": {Input: 0.27, Output: 1.1}}}}
	if err := st.SaveSettings(t.Context(), job.ID, next); err != nil {
		t.Fatalf("SaveSettings: %v", err)
	}
	if got := mustJob(t, st, "set").Settings; !reflect.DeepEqual(got, next) {
		t.Errorf("Settings = %+v, want %+v", got, next)
	}
	for _, end := range []struct {
		end jobs.RunEnd
		msg string
		at  time.Time
	}{{jobs.EndBudget, "--max-cost 1 reached", t0.Add(5 * time.Second)}, {jobs.EndFinished, "", t0.Add(time.Minute)}} {
		if err := st.EndRun(t.Context(), job.ID, end.end, end.msg, end.at); err != nil {
			t.Fatalf("EndRun: %v", err)
		}
		got := mustJob(t, st, "set")
		if got.LastEnd != end.end || got.LastEndMessage != end.msg || !got.LastEndAt.Equal(end.at) {
			t.Errorf("last end = %q %q at %v, want %q %q at %v", got.LastEnd, got.LastEndMessage, got.LastEndAt,
				end.end, end.msg, end.at)
		}
	}
}

func testRunState(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "paced", chats(1))
	other := mustImport(t, st, "other", chats(1))
	if _, err := st.RunState(t.Context(), job.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("RunState before any save = %v, want ErrNotFound", err)
	}
	states := []jobs.RunState{
		{Concurrency: 8, MaxConcurrency: 64, InFlight: 7, RPM: 3000, TPM: 90000, AdaptiveRPM: 2700,
			PausedUntil: t0.Add(1500 * time.Millisecond), Outage: "127.0.0.1:1 unreachable (connection refused)",
			OutageSince: t0.Add(-time.Minute), NextProbe: t0.Add(2 * time.Second), UpdatedAt: t0},
		{Concurrency: 9, MaxConcurrency: 64, UpdatedAt: t0.Add(time.Second)}, // replaces every field
	}
	for _, want := range states {
		if err := st.SaveRunState(t.Context(), job.ID, want); err != nil {
			t.Fatalf("SaveRunState: %v", err)
		}
		if got, err := st.RunState(t.Context(), job.ID); err != nil || !sameRunState(got, want) {
			t.Errorf("RunState() = %+v, %v; want %+v", got, err, want)
		}
	}
	if _, err := st.RunState(t.Context(), other.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("another job's RunState = %v, want ErrNotFound", err)
	}
	for range 2 { // clearing twice is harmless
		if err := st.ClearRunState(t.Context(), job.ID); err != nil {
			t.Fatalf("ClearRunState: %v", err)
		}
	}
	if _, err := st.RunState(t.Context(), job.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("RunState after ClearRunState = %v, want ErrNotFound", err)
	}
}

// sameRunState compares run states, their times with Equal.
func sameRunState(a, b jobs.RunState) bool {
	times := func(s jobs.RunState) []time.Time {
		return []time.Time{s.PausedUntil, s.OutageSince, s.NextProbe, s.UpdatedAt}
	}
	ta, tb := times(a), times(b)
	a.PausedUntil, a.OutageSince, a.NextProbe, a.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	b.PausedUntil, b.OutageSince, b.NextProbe, b.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b && slices.EqualFunc(ta, tb, time.Time.Equal)
}

func testClose(t *testing.T, st jobs.Store) {
	mustImport(t, st, "closed", chats(1))
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := st.Job(t.Context(), "closed"); err == nil {
		t.Error("Job() after Close = nil error, want one")
	}
}
