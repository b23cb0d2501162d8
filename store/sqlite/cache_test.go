package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// keyed is chat request n with the cache key "key-<key>" ("" for none).
func keyed(n int, key string) jobs.Request {
	r := chatRequest(n)
	if key != "" {
		r.CacheKey = "key-" + key
	}
	return r
}

// answer is a full answer to r, with its own usage and latency.
func answer(r jobs.Request, text string) jobs.Outcome {
	return jobs.Outcome{Request: r, Next: jobs.StatusSucceeded, CountAttempt: true,
		Attempt: &jobs.Attempt{Number: 1, StartedAt: t0, Duration: 700 * time.Millisecond, StatusCode: 200},
		Result: &jobs.Result{StatusCode: 200, ResponseID: "resp-" + text, ProviderRequestID: "prov-" + text,
			Model: "deepseek/deepseek-v3", Raw: []byte(`{"id":"resp-` + text + `","choices":[]}`),
			Content: text, ReasoningContent: "thought " + text, FinishReason: "stop",
			Usage:   jobs.Usage{Known: true, PromptTokens: 10, CompletionTokens: 5, ReasoningTokens: 2, TotalTokens: 15},
			Latency: 700 * time.Millisecond, TTFT: 90 * time.Millisecond, CreatedAt: t0}}
}

func TestAnswerFromCache(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	// Job a answers keys k1 and k2, fails k3, leaves k4 pending.
	a := mustImport(t, s, "a", []jobs.Request{keyed(1, "k1"), keyed(2, "k2"), keyed(3, "k3"), keyed(4, "k4")})
	reqs := mustClaim(t, s, a.ID, 3)
	mustRecord(t, s, answer(reqs[0], "one"), answer(reqs[1], "two"), failPermanently(reqs[2]))

	// Job b asks k2 and k1 again (in another order), k3, k4, a new key, and
	// one request without a key.
	b := mustImport(t, s, "b", []jobs.Request{keyed(1, "k2"), keyed(2, "k3"), keyed(3, "k1"), keyed(4, "k4"),
		keyed(5, "k5"), keyed(6, "")})
	// Request 3 of b failed once (retryable) before: its error goes.
	mustExec(t, s, `UPDATE requests SET error_class = 'server', error_status_code = 500, error_message = 'boom',
		not_before = 99 WHERE job_id = ? AND line = 3`, b.ID)
	clockOf(s).Advance(time.Hour)

	n, err := s.AnswerFromCache(ctx, b.ID)
	if err != nil || n != 2 {
		t.Fatalf("AnswerFromCache = %d, %v; want 2", n, err)
	}
	want := []jobs.Status{jobs.StatusSucceeded, jobs.StatusPending, jobs.StatusSucceeded,
		jobs.StatusPending, jobs.StatusPending, jobs.StatusPending}
	if got := statuses(t, s, b.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	t.Run("ResultsAreCopies", func(t *testing.T) {
		var got []jobs.Record
		if err := s.Records(ctx, b.ID, func(r jobs.Record) error { got = append(got, r); return nil }); err != nil {
			t.Fatal(err)
		}
		for i, text := range map[int]string{0: "two", 2: "one"} {
			r := got[i]
			if r.Result == nil || r.Result.Content != text || string(r.Result.Raw) != `{"id":"resp-`+text+`","choices":[]}` ||
				r.Result.ReasoningContent != "thought "+text || r.Result.Usage.TotalTokens != 15 ||
				r.Result.ProviderRequestID != "prov-"+text || r.Result.TTFT != 90*time.Millisecond {
				t.Errorf("record %d: result %+v, want a copy of %q's", i, r.Result, text)
			}
			if r.Failure != nil || r.Request.Attempts != 0 {
				t.Errorf("record %d: failure %v, attempts %d; want none", i, r.Failure, r.Request.Attempts)
			}
			if !r.Result.CreatedAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("record %d: created at %v, want the time it was answered from the cache", i, r.Result.CreatedAt)
			}
		}
	})
	t.Run("NothingSentNothingCounted", func(t *testing.T) {
		if got := queryInt(t, s, `SELECT count(*) FROM attempts WHERE job_id = ?`, b.ID); got != 0 {
			t.Errorf("%d attempt rows for the cached job", got)
		}
		st, err := s.Stats(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Cached != 2 || st.Usage.Known || st.Usage.TotalTokens != 0 || len(st.Models) != 0 || st.LatencyP50 != 0 {
			t.Errorf("Stats(b) = cached %d, usage %+v, models %v, p50 %v; want 2 cached that cost nothing",
				st.Cached, st.Usage, st.Models, st.LatencyP50)
		}
		sa, err := s.Stats(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if sa.Cached != 0 || sa.Usage.TotalTokens != 30 || sa.LatencyP50 != 700*time.Millisecond {
			t.Errorf("Stats(a) = cached %d, usage %+v, p50 %v", sa.Cached, sa.Usage, sa.LatencyP50)
		}
	})
	t.Run("Idempotent", func(t *testing.T) {
		if n, err := s.AnswerFromCache(ctx, b.ID); err != nil || n != 0 {
			t.Errorf("second AnswerFromCache = %d, %v; want 0", n, err)
		}
	})
	t.Run("ClaimSkipsAnswered", func(t *testing.T) {
		got := mustClaim(t, s, b.ID, 10)
		if len(got) != 4 {
			t.Errorf("claimed %d requests, want the 4 not answered", len(got))
		}
	})
	t.Run("ChainsAndCancelledJobs", func(t *testing.T) {
		// c asks k1 too: b's copy and a's original both hold it.
		c := mustImport(t, s, "c", []jobs.Request{keyed(1, "k1")})
		d := mustImport(t, s, "d", []jobs.Request{keyed(1, "k1")})
		if _, err := s.Cancel(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		if n, err := s.AnswerFromCache(ctx, d.ID); err != nil || n != 0 {
			t.Errorf("AnswerFromCache(cancelled job) = %d, %v; want 0", n, err)
		}
		if n, err := s.AnswerFromCache(ctx, c.ID); err != nil || n != 1 {
			t.Errorf("AnswerFromCache(c) = %d, %v; want 1", n, err)
		}
	})
}

// TestAnswerFromCacheWithinAJob checks that identical requests of one job
// are answered from each other on the next run, and never from themselves.
func TestAnswerFromCacheWithinAJob(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "self", []jobs.Request{keyed(1, "same"), keyed(2, "same"), keyed(3, "other")})
	if n, err := s.AnswerFromCache(ctx, job.ID); err != nil || n != 0 {
		t.Fatalf("AnswerFromCache before any answer = %d, %v", n, err)
	}
	reqs := mustClaim(t, s, job.ID, 1)
	mustRecord(t, s, answer(reqs[0], "first"))
	mustExec(t, s, `UPDATE requests SET status = 'pending' WHERE status = 'running'`)
	if n, err := s.AnswerFromCache(ctx, job.ID); err != nil || n != 1 {
		t.Fatalf("AnswerFromCache = %d, %v; want 1", n, err)
	}
	want := []jobs.Status{jobs.StatusSucceeded, jobs.StatusSucceeded, jobs.StatusPending}
	if got := statuses(t, s, job.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if got := queryInt(t, s, `SELECT count(*) FROM results WHERE job_id = ? AND cached = 1`, job.ID); got != 1 {
		t.Errorf("%d cached results, want 1", got)
	}
}

func TestCacheKeyStoredAtImport(t *testing.T) {
	s := mustOpenStore(t)
	job := mustImport(t, s, "keys", []jobs.Request{keyed(1, "x"), keyed(2, "")})
	if got := queryInt(t, s, `SELECT count(*) FROM requests WHERE job_id = ? AND cache_key = 'key-x'`, job.ID); got != 1 {
		t.Errorf("%d requests with key-x, want 1", got)
	}
	if got := queryInt(t, s, `SELECT count(*) FROM requests WHERE job_id = ? AND cache_key IS NULL`, job.ID); got != 1 {
		t.Errorf("%d requests without a key, want 1 (an empty key is stored as NULL)", got)
	}
}

// A pass in chunks answers what one pass answers, in claim order, and a
// claim between its chunks takes only requests the pass left pending.
func TestCachePassChunks(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	a := mustImport(t, s, "a", []jobs.Request{keyed(1, "k1"), keyed(2, "k2"), keyed(3, "k3")})
	reqs := mustClaim(t, s, a.ID, 3)
	mustRecord(t, s, answer(reqs[0], "one"), answer(reqs[1], "two"), answer(reqs[2], "three"))

	// Job b: lines 1-3 and 7 are cached, 4-6 and 8 are new keys.
	b := mustImport(t, s, "b", []jobs.Request{keyed(1, "k1"), keyed(2, "k2"), keyed(3, "k3"), keyed(4, "n4"),
		keyed(5, "n5"), keyed(6, "n6"), keyed(7, "k1"), keyed(8, "n8")})
	p := s.NewCachePass(b.ID)
	var chunks int
	more, err := p.Next(ctx, 2) // lines 1 and 2
	chunks++
	if err != nil || !more || p.Answered() != 2 {
		t.Fatalf("first chunk: more %v, answered %d, %v; want more, 2", more, p.Answered(), err)
	}
	// A run claims now: it gets the first pending requests, the pass's
	// next chunk goes on after them.
	claimed := mustClaim(t, s, b.ID, 2)
	if got := linesOf(claimed); fmt.Sprint(got) != "[3 4]" {
		t.Fatalf("claimed lines %v, want [3 4] (1 and 2 answered)", got)
	}
	for more {
		if more, err = p.Next(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if chunks++; chunks > 10 {
			t.Fatal("the pass does not end")
		}
	}
	if p.Answered() != 3 {
		t.Errorf("answered %d, want 3 (lines 1, 2 and 7; line 3 was claimed first)", p.Answered())
	}
	want := []jobs.Status{jobs.StatusSucceeded, jobs.StatusSucceeded, jobs.StatusRunning, jobs.StatusRunning,
		jobs.StatusPending, jobs.StatusPending, jobs.StatusSucceeded, jobs.StatusPending}
	if got := statuses(t, s, b.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if got := queryInt(t, s, `SELECT count(*) FROM results WHERE job_id = ? AND cached = 1`, b.ID); got != 3 {
		t.Errorf("%d cached results, want 3", got)
	}
	// Run again, nothing more to answer.
	if n, err := s.AnswerFromCache(ctx, b.ID); err != nil || n != 0 {
		t.Errorf("AnswerFromCache again = %d, %v; want 0", n, err)
	}
}
