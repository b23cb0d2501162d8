package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// The provider batches contract: a request put in a provider batch is
// running and the batch's until the batch is collected; only the batch's
// own answer (recorded once) or its collection moves it.

// requestIDs are the ids of the job's requests in input order.
func requestIDs(t *testing.T, st jobs.Store, jobID int64) []int64 {
	t.Helper()
	var ids []int64
	for _, r := range mustRecords(t, st, jobID) {
		ids = append(ids, r.Request.ID)
	}
	return ids
}

// mustCreateBatch puts the requests ids of the job in a new batch of key.
func mustCreateBatch(t *testing.T, st jobs.Store, jobID int64, key string, ids []int64) jobs.ProviderBatch {
	t.Helper()
	b, err := st.CreateBatch(t.Context(), jobs.ProviderBatch{JobID: jobID, Key: key, Endpoint: jobs.EndpointChat,
		Model: "m-v3", Requests: len(ids), Bytes: int64(100 * len(ids))}, ids)
	if err != nil {
		t.Fatalf("CreateBatch(%s, %v): %v", key, ids, err)
	}
	return b
}

func mustCollect(t *testing.T, st jobs.Store, batchID int64, want int) {
	t.Helper()
	if n, err := st.CollectBatch(t.Context(), batchID); err != nil || n != want {
		t.Fatalf("CollectBatch(%d) = %d, %v; want %d", batchID, n, err, want)
	}
}

func mustBatches(t *testing.T, st jobs.Store, jobID int64) []jobs.ProviderBatch {
	t.Helper()
	list, err := st.Batches(t.Context(), jobID)
	if err != nil {
		t.Fatalf("Batches: %v", err)
	}
	return list
}

// batchRequests lists what BatchRequests hands out.
func batchRequests(t *testing.T, st jobs.Store, batchID int64, bodies bool) []jobs.Request {
	t.Helper()
	var out []jobs.Request
	if err := st.BatchRequests(t.Context(), batchID, bodies, func(r jobs.Request) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("BatchRequests(%d): %v", batchID, err)
	}
	return out
}

// batchAnswer is answer(r, text) as the output file of batch batchID
// gives it.
func batchAnswer(r jobs.Request, batchID int64, text string) jobs.Outcome {
	o := answer(r, text, time.Second)
	o.Attempt.ProviderBatch, o.Result.ProviderBatch = batchID, batchID
	return o
}

// testBatchCreate: the requests named move to running in the new batch,
// which Batches lists as CreateBatch returned it; no claim takes them, and
// the requests not named stay pending.
func testBatchCreate(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "batch", chats(5))
	ids := requestIDs(t, st, job.ID)
	b := mustCreateBatch(t, st, job.ID, "batch-1", []int64{ids[1], ids[3], ids[4]})
	if b.ID == 0 || b.JobID != job.ID || b.Key != "batch-1" || b.State != jobs.BatchNew || b.Requests != 3 ||
		b.Bytes != 300 || b.Model != "m-v3" || b.Endpoint != jobs.EndpointChat || b.CreatedAt.IsZero() ||
		b.UpdatedAt.Before(b.CreatedAt) || b.BatchID != "" || b.Left != 0 {
		t.Errorf("CreateBatch() = %+v, want an id, state new, its times and the values given", b)
	}
	if got := mustBatches(t, st, job.ID); len(got) != 1 || !sameBatch(got[0], b) {
		t.Errorf("Batches() = %+v, want [%+v]", got, b)
	}
	want := []jobs.Status{jobs.StatusPending, jobs.StatusRunning, jobs.StatusPending, jobs.StatusRunning, jobs.StatusRunning}
	if got := statuses(t, st, job.ID); !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if got := linesOf(mustClaim(t, st, job.ID, 10)); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("claimed lines %v, want [1 3] (not those in the batch)", got)
	}
	if got := mustStats(t, st, job.ID); got.InBatches != 3 || got.Counts[jobs.StatusRunning] != 5 {
		t.Errorf("Stats: %d in batches of %d running, want 3 of 5", got.InBatches, got.Counts[jobs.StatusRunning])
	}
}

// sameBatch compares two batches, their times to the millisecond.
func sameBatch(a, b jobs.ProviderBatch) bool {
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.Truncate(time.Millisecond), a.UpdatedAt.Truncate(time.Millisecond)
	b.CreatedAt, b.UpdatedAt = b.CreatedAt.Truncate(time.Millisecond), b.UpdatedAt.Truncate(time.Millisecond)
	return a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && withoutTimes(a) == withoutTimes(b)
}

func withoutTimes(b jobs.ProviderBatch) jobs.ProviderBatch {
	b.CreatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	return b
}

// testBatchCreateRefused: CreateBatch with one request that is no longer
// pending (answered, claimed, of another job), or for a cancelled job,
// matches ErrBatchChanged and stores nothing: no batch, no request moved.
func testBatchCreateRefused(t *testing.T, st jobs.Store) {
	tests := []struct {
		name string
		// spoil makes the job's third request, or the job, unfit.
		spoil func(t *testing.T, job jobs.Job) []int64
	}{
		{"Answered", func(t *testing.T, job jobs.Job) []int64 {
			reqs := mustClaim(t, st, job.ID, 3)
			mustRecord(t, st, succeed(reqs[2]), handBack(reqs[0]), handBack(reqs[1]))
			return requestIDs(t, st, job.ID)
		}},
		{"Claimed", func(t *testing.T, job jobs.Job) []int64 {
			reqs := mustClaim(t, st, job.ID, 3)
			mustRecord(t, st, handBack(reqs[0]), handBack(reqs[1]))
			return requestIDs(t, st, job.ID)
		}},
		{"OfAnotherJob", func(t *testing.T, job jobs.Job) []int64 {
			ids := requestIDs(t, st, job.ID)
			ids[2] = requestIDs(t, st, mustImport(t, st, job.Name+"-other", chats(1)).ID)[0]
			return ids
		}},
		{"JobCancelled", func(t *testing.T, job jobs.Job) []int64 {
			if _, err := st.Cancel(t.Context(), job.ID); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			return requestIDs(t, st, job.ID)
		}},
		{"PendingInCancelledJob", func(t *testing.T, job jobs.Job) []int64 {
			// A live run holds the job: what it hands back after the
			// cancel is pending, in a job no longer active.
			if err := st.Lock(t.Context(), job.ID, ownerA, live, alive); err != nil {
				t.Fatalf("Lock: %v", err)
			}
			reqs := mustClaim(t, st, job.ID, 4)
			if _, err := st.Cancel(t.Context(), job.ID); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			mustRecord(t, st, handBack(reqs[0]), handBack(reqs[1]), handBack(reqs[2]), handBack(reqs[3]))
			return requestIDs(t, st, job.ID)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := mustImport(t, st, tt.name, chats(4))
			ids := tt.spoil(t, job)
			before := statuses(t, st, job.ID)
			_, err := st.CreateBatch(t.Context(), jobs.ProviderBatch{JobID: job.ID, Key: tt.name, Model: "m-v3",
				Endpoint: jobs.EndpointChat, Requests: 4}, ids)
			if !errors.Is(err, jobs.ErrBatchChanged) {
				t.Fatalf("CreateBatch() error = %v, want ErrBatchChanged", err)
			}
			if got := statuses(t, st, job.ID); !slices.Equal(got, before) {
				t.Errorf("statuses = %v, want %v as before", got, before)
			}
			if got := mustBatches(t, st, job.ID); len(got) != 0 {
				t.Errorf("Batches() = %+v, want none", got)
			}
			if got := mustStats(t, st, job.ID).InBatches; got != 0 {
				t.Errorf("Stats.InBatches = %d, want 0", got)
			}
		})
	}
}

// testBatchUpdate: UpdateBatch stores every field it is given to store,
// oldest batch first in the list, and leaves the others as created.
func testBatchUpdate(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "update", chats(3))
	ids := requestIDs(t, st, job.ID)
	first := mustCreateBatch(t, st, job.ID, "update-1", ids[:2])
	second := mustCreateBatch(t, st, job.ID, "update-2", ids[2:])
	steps := []func(b *jobs.ProviderBatch){
		func(b *jobs.ProviderBatch) { b.State, b.InputFileID = jobs.BatchUploaded, "file-in" },
		func(b *jobs.ProviderBatch) {
			b.State, b.BatchID, b.ProviderStatus = jobs.BatchSubmitted, "batch_abc", "validating"
		},
		func(b *jobs.ProviderBatch) {
			b.ProviderStatus, b.Counts = "in_progress", jobs.BatchCounts{Total: 2, Completed: 1, Failed: 1}
		},
		func(b *jobs.ProviderBatch) {
			b.State, b.ProviderStatus, b.OutputFileID, b.ErrorFileID = jobs.BatchEnded, "failed", "file-out", "file-err"
			b.Message = "too many lines"
		},
	}
	want := first
	for i, step := range steps {
		step(&want)
		given := want
		given.Requests, given.Bytes, given.Key, given.Left = 99, 99, "ignored", 99 // not UpdateBatch's to change
		if err := st.UpdateBatch(t.Context(), given); err != nil {
			t.Fatalf("UpdateBatch (step %d): %v", i+1, err)
		}
		got := mustBatches(t, st, job.ID)
		if len(got) != 2 || !sameBatch(got[1], second) {
			t.Fatalf("Batches() = %+v, want the updated one, then %+v", got, second)
		}
		if got[0].UpdatedAt.Before(want.UpdatedAt) {
			t.Errorf("step %d: UpdatedAt = %v, before %v", i+1, got[0].UpdatedAt, want.UpdatedAt)
		}
		want.UpdatedAt = got[0].UpdatedAt
		if !sameBatch(got[0], want) {
			t.Errorf("step %d: Batches()[0] =\n%+v, want\n%+v", i+1, got[0], want)
		}
	}
	if err := st.UpdateBatch(t.Context(), jobs.ProviderBatch{ID: second.ID + 1000, State: jobs.BatchUploaded}); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("UpdateBatch of a missing batch = %v, want ErrNotFound", err)
	}
}

// testBatchRequests: BatchRequests hands out, in id order, the requests
// still running in the batch, with their bodies or without; none once the
// batch is collected.
func testBatchRequests(t *testing.T, st jobs.Store) {
	in := chats(6)
	job := mustImport(t, st, "requests", in)
	ids := requestIDs(t, st, job.ID)
	b := mustCreateBatch(t, st, job.ID, "requests-1", []int64{ids[4], ids[1], ids[2], ids[0]})
	other := mustCreateBatch(t, st, job.ID, "requests-2", []int64{ids[5]})
	answered := batchRequests(t, st, b.ID, false)[1] // line 2
	mustRecord(t, st, batchAnswer(answered, b.ID, "two"))
	for _, bodies := range []bool{false, true} {
		got := batchRequests(t, st, b.ID, bodies)
		if lines := linesOf(got); !slices.Equal(lines, []int{1, 3, 5}) {
			t.Fatalf("BatchRequests(bodies %v): lines %v, want [1 3 5]", bodies, lines)
		}
		for _, r := range got {
			w := in[r.Line-1]
			if r.ID != ids[r.Line-1] || r.JobID != job.ID || r.CustomID != w.CustomID || r.Model != w.Model ||
				r.Endpoint != w.Endpoint || r.Status != jobs.StatusRunning {
				t.Errorf("BatchRequests: %+v, want line %d as imported, running", r, r.Line)
			}
			if wantBody := w.Body; !bodies && r.Body != nil || bodies && !bytes.Equal(r.Body, wantBody) {
				t.Errorf("BatchRequests(bodies %v): line %d body %q", bodies, r.Line, r.Body)
			}
		}
	}
	if got := linesOf(batchRequests(t, st, other.ID, false)); !slices.Equal(got, []int{6}) {
		t.Errorf("the other batch: lines %v, want [6]", got)
	}
	mustCollect(t, st, b.ID, 3)
	mustClaim(t, st, job.ID, 10) // its leftovers, running again, online
	if got := batchRequests(t, st, b.ID, true); len(got) != 0 {
		t.Errorf("BatchRequests of a collected batch: lines %v, want none", linesOf(got))
	}
	stop := errors.New("stop")
	calls := 0
	if err := st.BatchRequests(t.Context(), other.ID, false, func(jobs.Request) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("BatchRequests with a failing callback = %v after %d calls, want its error after 1", err, calls)
	}
}

// testPendingRequests: PendingRequests hands out every pending request of
// the job in id order, whatever its not-before time, with its body, and
// none that is running, final or of another job.
func testPendingRequests(t *testing.T, st jobs.Store) {
	in := chats(6)
	job := mustImport(t, st, "pending", in)
	mustImport(t, st, "pending-other", chats(2))
	reqs := mustClaim(t, st, job.ID, 3)
	// Line 1 waits an hour: in claim order it would come last.
	mustRecord(t, st, rateLimited(reqs[0], "slow", t0.Add(time.Hour)), succeed(reqs[1])) // line 3 stays running
	mustCreateBatch(t, st, job.ID, "pending-1", []int64{requestIDs(t, st, job.ID)[4]})
	var got []jobs.Request
	if err := st.PendingRequests(t.Context(), job.ID, func(r jobs.Request) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatalf("PendingRequests: %v", err)
	}
	if lines := linesOf(got); !slices.Equal(lines, []int{1, 4, 6}) {
		t.Fatalf("PendingRequests: lines %v, want [1 4 6]", lines)
	}
	for _, r := range got {
		w := in[r.Line-1]
		if r.JobID != job.ID || r.CustomID != w.CustomID || !bytes.Equal(r.Body, w.Body) || r.Status != jobs.StatusPending {
			t.Errorf("PendingRequests: line %d = %+v, want it as imported, pending, with its body", r.Line, r)
		}
	}
	if got[0].Attempts != 1 || !got[0].NotBefore.Equal(t0.Add(time.Hour)) {
		t.Errorf("line 1: %d attempts, not before %v; want 1, %v", got[0].Attempts, got[0].NotBefore, t0.Add(time.Hour))
	}
	stop := errors.New("stop")
	calls := 0
	if err := st.PendingRequests(t.Context(), job.ID, func(jobs.Request) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("PendingRequests with a failing callback = %v after %d calls, want its error after 1", err, calls)
	}
}

// testBatchRecord: the answers of a batch are recorded as online ones are,
// with the batch they came from, and each model's usage counts the part
// answered in batches apart, in Stats and in a summary alike.
func testBatchRecord(t *testing.T, st jobs.Store) {
	in := chats(4)
	in[0].Model, in[1].Model = "m-r1", "m-r1"
	job := mustImport(t, st, "record", in)
	ids := requestIDs(t, st, job.ID)
	b := mustCreateBatch(t, st, job.ID, "record-1", ids[:3])
	online := mustClaim(t, st, job.ID, 1)[0] // line 4
	sent := batchRequests(t, st, b.ID, false)
	bad := failPermanently(sent[1], "bad line")
	bad.Attempt.ProviderBatch = b.ID
	mustRecord(t, st, batchAnswer(sent[0], b.ID, "one"), bad, batchAnswer(sent[2], b.ID, "three"),
		answer(online, "four", time.Second))
	recs := mustRecords(t, st, job.ID)
	for i, want := range []int64{b.ID, -1, b.ID, 0} { // -1: no result
		if r := recs[i].Result; (want < 0) != (r == nil) || r != nil && r.ProviderBatch != want {
			t.Errorf("line %d: result %+v, want one of provider batch %d (-1: none)", i+1, r, want)
		}
	}
	want := []jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusSucceeded, jobs.StatusSucceeded}
	if got := statuses(t, st, job.ID); !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	one := jobs.Usage{Known: true, PromptTokens: 10, CompletionTokens: 5, ReasoningTokens: 2, TotalTokens: 15}
	wantModels := []jobs.ModelUsage{
		{Model: "m-r1", Results: 1, Usage: one, BatchResults: 1, BatchUsage: one},
		{Model: "m-v3", Results: 2, Usage: one.Add(one), BatchResults: 1, BatchUsage: one},
	}
	stats := mustStats(t, st, job.ID)
	if !slices.Equal(stats.Models, wantModels) {
		t.Errorf("Stats.Models = %+v,\nwant %+v", stats.Models, wantModels)
	}
	if stats.Usage != one.Add(one).Add(one) || stats.Attempts != 4 || stats.InBatches != 0 {
		t.Errorf("Stats: usage %+v, %d attempts, %d in batches; want 3 answers' usage, 4, 0", stats.Usage, stats.Attempts, stats.InBatches)
	}
	sum, err := st.BeginSummary(t.Context(), job.ID)
	if err != nil {
		t.Fatalf("BeginSummary: %v", err)
	}
	// What the summary line of a run prints comes from the summary alone.
	if err := sum.CountAttempts(t.Context()); err != nil {
		t.Fatalf("Summary.CountAttempts: %v", err)
	}
	if got, err := sum.Finish(t.Context()); err != nil || !slices.Equal(got.Models, wantModels) ||
		got.Usage != stats.Usage || got.Attempts != stats.Attempts || got.Counts[jobs.StatusSucceeded] != stats.Counts[jobs.StatusSucceeded] {
		t.Errorf("Summary.Finish() = models %+v, usage %+v, %d attempts, counts %v, %v;\nwant %+v, %+v, %d, %v",
			got.Models, got.Usage, got.Attempts, got.Counts, err, wantModels, stats.Usage, stats.Attempts, stats.Counts)
	}
}

// testBatchRecordExactlyOnce: a batch's answer applies only while its
// request is running in that batch and the batch is open: a second
// answer, one of another batch and a line of a batch collected since are
// ignored.
func testBatchRecordExactlyOnce(t *testing.T, st jobs.Store) {
	tests := []struct {
		name string
		// run records outcomes for r, the job's one request, in batch b;
		// other is a second batch, of another request of the job.
		run  func(t *testing.T, jobID int64, b, other int64, r jobs.Request)
		want recorded
	}{
		{"SecondAnswerIgnored", func(t *testing.T, _ int64, b, _ int64, r jobs.Request) {
			mustRecord(t, st, batchAnswer(r, b, "first"))
			mustRecord(t, st, batchAnswer(r, b, "second"))
		}, recorded{jobs.StatusSucceeded, 1, "first", nil}},
		{"AnswerOfAnotherBatchIgnored", func(t *testing.T, _ int64, b, other int64, r jobs.Request) {
			mustRecord(t, st, batchAnswer(r, other, "wrong"))
			if got := batchRequests(t, st, b, false); len(got) != 1 {
				t.Errorf("after another batch's answer: %d requests running in the batch, want 1", len(got))
			}
			mustRecord(t, st, batchAnswer(r, b, "right"))
		}, recorded{jobs.StatusSucceeded, 1, "right", nil}},
		{"LineOfCollectedBatchIgnored", func(t *testing.T, jobID int64, b, _ int64, r jobs.Request) {
			mustCollect(t, st, b, 1)
			again := mustClaim(t, st, jobID, 1)[0] // now online
			mustRecord(t, st, batchAnswer(r, b, "late"))
			mustRecord(t, st, answer(again, "online", time.Second))
		}, recorded{jobs.StatusSucceeded, 1, "online", nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := mustImport(t, st, tt.name, chats(2))
			ids := requestIDs(t, st, job.ID)
			b := mustCreateBatch(t, st, job.ID, tt.name+"-1", ids[:1])
			other := mustCreateBatch(t, st, job.ID, tt.name+"-2", ids[1:])
			tt.run(t, job.ID, b.ID, other.ID, batchRequests(t, st, b.ID, false)[0])
			tt.want.check(t, "line 1", mustRecords(t, st, job.ID)[0])
			if got := mustStats(t, st, job.ID).Attempts; got != 1 {
				t.Errorf("Stats.Attempts = %d, want 1", got)
			}
		})
	}
}

// testBatchLeftAlone: Recover, Cancel and CancelLeftovers leave the
// requests of an open batch running (they are the batch's, not a dead
// run's), and treat them as any other once the batch is collected and
// they were claimed again online.
func testBatchLeftAlone(t *testing.T, st jobs.Store) {
	R, P, S, C := jobs.StatusRunning, jobs.StatusPending, jobs.StatusSucceeded, jobs.StatusCancelled
	tests := []struct {
		name string
		// run acts on the job, whose lines 1 and 2 are in batch b and
		// line 3 running online (an orphan: no run holds the job).
		run  func(t *testing.T, job jobs.Job, b jobs.ProviderBatch)
		want []jobs.Status
	}{
		{"Recover", func(t *testing.T, job jobs.Job, b jobs.ProviderBatch) {
			wantCalls(t, "Recover", st.Recover, job.ID, 1)
		}, []jobs.Status{R, R, P, P}},
		{"RecoverAfterCollect", func(t *testing.T, job jobs.Job, b jobs.ProviderBatch) {
			mustCollect(t, st, b.ID, 2)
			mustClaim(t, st, job.ID, 2) // lines 1 and 2, online
			wantCalls(t, "Recover", st.Recover, job.ID, 3)
		}, []jobs.Status{P, P, P, P}},
		{"Cancel", func(t *testing.T, job jobs.Job, b jobs.ProviderBatch) {
			wantCalls(t, "Cancel", st.Cancel, job.ID, 2)
			wantCalls(t, "CancelLeftovers", st.CancelLeftovers, job.ID, 0)
			mustRecord(t, st, batchAnswer(batchRequests(t, st, b.ID, false)[0], b.ID, "one")) // still the batch's
		}, []jobs.Status{S, R, C, C}},
		{"CancelThenCollect", func(t *testing.T, job jobs.Job, b jobs.ProviderBatch) {
			wantCalls(t, "Cancel", st.Cancel, job.ID, 2)
			mustCollect(t, st, b.ID, 2)
			wantCalls(t, "CancelLeftovers", st.CancelLeftovers, job.ID, 2)
		}, []jobs.Status{C, C, C, C}},
		{"CancelAfterCollect", func(t *testing.T, job jobs.Job, b jobs.ProviderBatch) {
			mustCollect(t, st, b.ID, 2)
			mustClaim(t, st, job.ID, 1) // line 1, online
			wantCalls(t, "Cancel", st.Cancel, job.ID, 4)
		}, []jobs.Status{C, C, C, C}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := mustImport(t, st, tt.name, chats(4))
			ids := requestIDs(t, st, job.ID)
			b := mustCreateBatch(t, st, job.ID, tt.name, ids[:2])
			if got := linesOf(mustClaim(t, st, job.ID, 1)); !slices.Equal(got, []int{3}) {
				t.Fatalf("claimed lines %v, want [3]", got)
			}
			tt.run(t, job, b)
			if got := statuses(t, st, job.ID); !slices.Equal(got, tt.want) {
				t.Errorf("statuses = %v, want %v", got, tt.want)
			}
		})
	}
}

// wantCalls checks that call(jobID) changes want requests.
func wantCalls(t *testing.T, name string, call func(context.Context, int64) (int, error), jobID int64, want int) {
	t.Helper()
	if n, err := call(t.Context(), jobID); err != nil || n != want {
		t.Fatalf("%s() = %d, %v; want %d", name, n, err, want)
	}
}

// testBatchCollect: collecting puts the requests still running in the
// batch back to pending, due now, with the attempts they had, stores
// their count and the state; a second collection changes nothing.
func testBatchCollect(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "collect", chats(4))
	first := mustClaim(t, st, job.ID, 1)[0]
	mustRecord(t, st, rateLimited(first, "slow", t0.Add(time.Hour))) // line 1 waits an hour
	ids := requestIDs(t, st, job.ID)
	b := mustCreateBatch(t, st, job.ID, "collect-1", ids[:3])
	mustRecord(t, st, batchAnswer(batchRequests(t, st, b.ID, false)[1], b.ID, "two"))
	if got := mustStats(t, st, job.ID).InBatches; got != 2 {
		t.Errorf("Stats.InBatches = %d before the collection, want 2", got)
	}
	mustCollect(t, st, b.ID, 2)
	mustCollect(t, st, b.ID, 0)
	got := mustBatches(t, st, job.ID)
	if len(got) != 1 || got[0].State != jobs.BatchCollected || got[0].Left != 2 || got[0].UpdatedAt.Before(b.CreatedAt) {
		t.Errorf("Batches() = %+v, want it collected with 2 left", got)
	}
	P, S := jobs.StatusPending, jobs.StatusSucceeded
	if got, want := statuses(t, st, job.ID), []jobs.Status{P, S, P, P}; !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if got, want := attemptCounts(t, st, job.ID), []int{1, 1, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("attempts = %v, want %v (collecting uses none)", got, want)
	}
	if stats := mustStats(t, st, job.ID); stats.InBatches != 0 || stats.Attempts != 2 {
		t.Errorf("Stats: %d in batches, %d attempts; want 0, 2", stats.InBatches, stats.Attempts)
	}
	if got := linesOf(mustClaim(t, st, job.ID, 10)); !slices.Equal(got, []int{1, 3, 4}) {
		t.Errorf("claimed at t0 after the collection: lines %v, want [1 3 4] (line 1 due now)", got)
	}
	if _, err := st.CollectBatch(t.Context(), b.ID+1000); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("CollectBatch of a missing batch = %v, want ErrNotFound", err)
	}
}

// testBatchStaysCollected: UpdateBatch neither collects a batch (that
// would leave its requests running in no open batch) nor reopens a
// collected one (that would take back requests claimed online since).
func testBatchStaysCollected(t *testing.T, st jobs.Store) {
	job := mustImport(t, st, "stays", chats(2))
	ids := requestIDs(t, st, job.ID)
	b := mustCreateBatch(t, st, job.ID, "stays-1", ids[:1])
	b.State = jobs.BatchCollected
	if err := st.UpdateBatch(t.Context(), b); !errors.Is(err, jobs.ErrBadTransition) {
		t.Errorf("UpdateBatch to collected = %v, want ErrBadTransition", err)
	}
	if got := mustBatches(t, st, job.ID)[0].State; got != jobs.BatchNew {
		t.Errorf("state = %s after a refused UpdateBatch, want new", got)
	}
	mustCollect(t, st, b.ID, 1)
	mustClaim(t, st, job.ID, 2)
	for _, state := range []jobs.BatchState{jobs.BatchCollected, jobs.BatchSubmitted} {
		b.State, b.ProviderStatus = state, "cancelled"
		if err := st.UpdateBatch(t.Context(), b); err != nil {
			t.Fatalf("UpdateBatch(%s) of a collected batch: %v", state, err)
		}
	}
	if got := mustBatches(t, st, job.ID)[0]; got.State != jobs.BatchCollected || got.ProviderStatus != "cancelled" {
		t.Errorf("after UpdateBatch: state %s, provider status %q; want collected, cancelled", got.State, got.ProviderStatus)
	}
	if n := mustStats(t, st, job.ID).InBatches; n != 0 {
		t.Errorf("Stats.InBatches = %d, want 0 (the batch stays collected)", n)
	}
}
