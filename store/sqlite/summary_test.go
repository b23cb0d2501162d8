package sqlite

import (
	"context"
	"testing"

	"github.com/llmbatch/llmbatch/jobs"
)

// A summary's figures are those of the moment BeginSummary read, even when
// outcomes are committed before Finish reads the usage: a run that starts
// between the two must not see its own outcomes counted twice.
func TestSummarySnapshot(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	job := mustImport(t, s, "summary", chatRequests(6))
	reqs := mustClaim(t, s, job.ID, 6)
	first := succeed(reqs[0])
	first.Result.Usage = jobs.Usage{Known: true, PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}
	mustRecord(t, s, first, failPermanently(reqs[1]))

	sum, err := s.BeginSummary(ctx, job.ID)
	if err != nil {
		t.Fatalf("BeginSummary: %v", err)
	}
	later := succeed(reqs[2])
	later.Result.Usage = jobs.Usage{Known: true, PromptTokens: 100, CompletionTokens: 50, TotalTokens: 150}
	mustRecord(t, s, later) // committed after the summary's moment

	if got, want := sum.Counts().Counts, counts(0, 4, 1, 1, 0); !equalCounts(got, want) {
		t.Errorf("Counts = %v, want %v", got, want)
	}
	got, err := sum.Finish(ctx)
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if got.Job.Name != "summary" || got.Job.Total != 6 {
		t.Errorf("Job = %+v, want summary with 6 requests", got.Job)
	}
	if !equalCounts(got.Counts, counts(0, 4, 1, 1, 0)) {
		t.Errorf("Counts after Finish = %v, want the snapshot's", got.Counts)
	}
	if got.Usage.TotalTokens != 15 || len(got.Models) != 1 || got.Models[0].Usage.TotalTokens != 15 {
		t.Errorf("usage %+v, models %+v; want 15 tokens (the later result is after the snapshot)", got.Usage, got.Models)
	}
	// A new summary sees the later result.
	again, err := s.BeginSummary(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	now, err := again.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if now.Usage.TotalTokens != 165 || now.Counts[jobs.StatusSucceeded] != 2 {
		t.Errorf("fresh summary: %d tokens, %v; want 165 tokens, 2 succeeded", now.Usage.TotalTokens, now.Counts)
	}
	if _, err := s.BeginSummary(ctx, job.ID+100); err != jobs.ErrNotFound {
		t.Errorf("BeginSummary of a missing job: %v, want ErrNotFound", err)
	}
}

func equalCounts(a, b map[jobs.Status]int) bool {
	for _, st := range jobs.Statuses {
		if a[st] != b[st] {
			return false
		}
	}
	return true
}
