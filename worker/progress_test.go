package worker

import (
	"testing"

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
