package worker

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
)

func TestProgressCounts(t *testing.T) {
	req := func(id int64, model string) jobs.Request { return jobs.Request{ID: id, Model: model} }
	usage := func(in, out int64) *jobs.Result {
		return &jobs.Result{Usage: jobs.Usage{Known: true, PromptTokens: in, CompletionTokens: out, TotalTokens: in + out}}
	}
	attempt := &jobs.Attempt{}
	var g progress
	steps := []struct {
		name string
		o    jobs.Outcome
		// want after the step
		succeeded, failed, retrying, tokens int64
	}{
		{"Retry", jobs.Outcome{Request: req(1, "a"), Attempt: attempt, Next: jobs.StatusPending, CountAttempt: true}, 0, 0, 1, 0},
		{"RetryAgain", jobs.Outcome{Request: req(1, "a"), Attempt: attempt, Next: jobs.StatusPending, CountAttempt: true}, 0, 0, 1, 0},
		{"OtherRetry", jobs.Outcome{Request: req(2, "b"), Attempt: attempt, Next: jobs.StatusPending, CountAttempt: true}, 0, 0, 2, 0},
		{"Interrupted", jobs.Outcome{Request: req(3, "a"), Next: jobs.StatusPending}, 0, 0, 2, 0},
		{"Fatal", jobs.Outcome{Request: req(4, "a"), Attempt: attempt, Next: jobs.StatusPending}, 0, 0, 2, 0},
		{"RetriedSucceeds", jobs.Outcome{Request: req(1, "a"), Attempt: attempt, Next: jobs.StatusSucceeded, CountAttempt: true, Result: usage(10, 5)}, 1, 0, 1, 15},
		{"RetriedFails", jobs.Outcome{Request: req(2, "b"), Attempt: attempt, Next: jobs.StatusFailed, CountAttempt: true}, 1, 1, 0, 15},
		{"Succeeds", jobs.Outcome{Request: req(5, "b"), Attempt: attempt, Next: jobs.StatusSucceeded, CountAttempt: true, Result: usage(3, 4)}, 2, 1, 0, 22},
		{"UsageUnknown", jobs.Outcome{Request: req(6, "a"), Attempt: attempt, Next: jobs.StatusSucceeded, CountAttempt: true, Result: &jobs.Result{}}, 3, 1, 0, 22},
	}
	for _, s := range steps {
		g.add(s.o)
		p := g.snapshot()
		if p.Succeeded != s.succeeded || p.Failed != s.failed || p.Retrying != s.retrying || p.Tokens != s.tokens {
			t.Fatalf("after %s: succeeded %d, failed %d, retrying %d, tokens %d; want %d, %d, %d, %d",
				s.name, p.Succeeded, p.Failed, p.Retrying, p.Tokens, s.succeeded, s.failed, s.retrying, s.tokens)
		}
	}
	p := g.snapshot()
	if a, b := p.Usage["a"], p.Usage["b"]; a.TotalTokens != 15 || a.PromptTokens != 10 || b.TotalTokens != 7 || b.CompletionTokens != 4 || !a.Known || !b.Known {
		t.Errorf("usage per model: a %+v, b %+v", a, b)
	}
	// A snapshot is a copy: later outcomes do not change it.
	g.add(jobs.Outcome{Request: req(7, "a"), Attempt: attempt, Next: jobs.StatusSucceeded, CountAttempt: true, Result: usage(1, 1)})
	if p.Usage["a"].TotalTokens != 15 {
		t.Errorf("snapshot usage changed to %d", p.Usage["a"].TotalTokens)
	}
}

// Failed attempts are tallied by class, with the first and the latest as
// examples, whatever becomes of their request; a snapshot is a copy.
func TestProgressErrors(t *testing.T) {
	fail := func(id int64, class jobs.ErrorClass, code int, msg string, next jobs.Status, counts bool) jobs.Outcome {
		return jobs.Outcome{Request: jobs.Request{ID: id}, Attempt: &jobs.Attempt{}, Next: next, CountAttempt: counts,
			Failure: &jobs.Failure{Class: class, StatusCode: code, Message: msg, Body: []byte(`{"error":{}}`)}}
	}
	var g progress
	g.add(fail(1, jobs.ClassRateLimited, 429, "slow down 1", jobs.StatusPending, true))
	g.add(fail(2, jobs.ClassServer, 500, "boom", jobs.StatusPending, true))
	g.add(fail(3, jobs.ClassRateLimited, 429, "slow down 2", jobs.StatusPending, true))
	g.add(fail(4, jobs.ClassNetwork, 0, "refused", jobs.StatusPending, false))    // held in an outage
	g.add(fail(5, jobs.ClassInvalidRequest, 400, "bad", jobs.StatusFailed, true)) // permanent
	g.add(jobs.Outcome{Request: jobs.Request{ID: 6}, Next: jobs.StatusPending})   // interrupted: no attempt
	g.add(jobs.Outcome{Request: jobs.Request{ID: 7}, Attempt: &jobs.Attempt{}, Next: jobs.StatusSucceeded, CountAttempt: true})
	p := g.snapshot()
	want := map[jobs.ErrorClass]jobs.ErrorTally{
		jobs.ClassRateLimited: {Count: 2,
			First: jobs.Failure{Class: jobs.ClassRateLimited, StatusCode: 429, Message: "slow down 1"},
			Last:  jobs.Failure{Class: jobs.ClassRateLimited, StatusCode: 429, Message: "slow down 2"}},
		jobs.ClassServer:         {Count: 1, First: jobs.Failure{Class: jobs.ClassServer, StatusCode: 500, Message: "boom"}, Last: jobs.Failure{Class: jobs.ClassServer, StatusCode: 500, Message: "boom"}},
		jobs.ClassNetwork:        {Count: 1, First: jobs.Failure{Class: jobs.ClassNetwork, Message: "refused"}, Last: jobs.Failure{Class: jobs.ClassNetwork, Message: "refused"}},
		jobs.ClassInvalidRequest: {Count: 1, First: jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "bad"}, Last: jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "bad"}},
	}
	if got := p.Errors; !reflect.DeepEqual(got, want) {
		t.Errorf("errors\n got %+v\nwant %+v", got, want)
	}
	g.add(fail(8, jobs.ClassRateLimited, 429, "slow down 3", jobs.StatusPending, true))
	if n := p.Errors[jobs.ClassRateLimited].Count; n != 2 {
		t.Errorf("a snapshot's tally changed to %d after a later failure", n)
	}
}

// OnFailure is called once for every failed attempt, with its outcome,
// and never for a success.
func TestRunnerOnFailure(t *testing.T) {
	st := mustOpenStore(t)
	jobID := mustImport(t, st, 6)
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(c fakeapi.Call) fakeapi.Fault {
		switch {
		case c.CustomKey == promptKey(2) && c.Attempt == 1:
			return fakeapi.Fault{Status: 429, Header: map[string]string{"Retry-After": "0"}}
		case c.CustomKey == promptKey(4):
			return fakeapi.Fault{Status: 400}
		}
		return fakeapi.Fault{}
	}})
	var mu sync.Mutex
	var got []string
	r := newTestRunner(st, jobID, fake, Options{Concurrency: 3, MaxAttempts: 3, OnFailure: func(o jobs.Outcome) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s #%d %d %s %s", o.Request.CustomID, o.Attempt.Number, o.Failure.StatusCode, o.Failure.Class, o.Next))
	}})
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	slices.Sort(got)
	want := []string{"req-2 #1 429 rate_limited pending", "req-4 #1 400 invalid_request failed"}
	if !slices.Equal(got, want) {
		t.Errorf("OnFailure saw %q, want %q", got, want)
	}
	if p := r.Progress(); p.Errors[jobs.ClassRateLimited].Count != 1 || p.Errors[jobs.ClassInvalidRequest].Count != 1 || len(p.Errors) != 2 {
		t.Errorf("tally %+v, want one rate_limited and one invalid_request", p.Errors)
	}
}
