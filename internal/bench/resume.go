package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/llmbatch/llmbatch/input"
	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/sqlite"
)

func init() {
	register(Scenario{
		Name: "resume",
		Doc:  "a 1,000,000-request job, half done, resumed in a child process: time from start to the first request",
		Huge: true,
		Run:  runResume,
	})
}

// orphans is how many requests the half-done job leaves running, as a
// killed run would.
const orphans = 64

func runResume(ctx context.Context, e *Env) error {
	n := e.cfg.hugeN
	bin, err := e.binary()
	if err != nil {
		return err
	}
	file, err := e.input(n)
	if err != nil {
		return err
	}
	db := e.path("resume.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(db + suffix)
	}
	if _, err := runChild(ctx, bin, nil, "--db", db, "import", "--job", "resume", file); err != nil {
		return err
	}
	start := time.Now()
	if err := halfDone(ctx, db, "resume", n/2); err != nil {
		return fmt.Errorf("mark half done: %w", err)
	}
	e.note("%s requests recorded as succeeded through the store in %s, %d left running (orphans of a killed run)",
		thousands(float64(n/2)), time.Since(start).Round(100*time.Millisecond), orphans)
	o := newObserved(fakeapi.Config{Key: benchKey})
	defer o.close()
	for _, how := range []struct{ label, arg string }{
		{"`llmbatch run JOB`", "resume"},
		{"`llmbatch run FILE` (hashes the file)", file},
	} {
		d, err := resumeOnce(ctx, bin, o, db, how.arg)
		if err != nil {
			return err
		}
		e.figure(how.label, fmt.Sprintf("first request after %s", d.Round(time.Millisecond)), "≤ 1 s", d <= time.Second)
	}
	steps, err := startSteps(ctx, db, "resume", file)
	if err != nil {
		return err
	}
	e.note("where a start goes, the same steps in this process: %s", steps)
	return nil
}

// startSteps times, in this process, what a run does before its first
// request, on the job's database.
func startSteps(ctx context.Context, db, name, file string) (string, error) {
	var parts []string
	t := time.Now()
	step := func(what string) {
		parts = append(parts, fmt.Sprintf("%s %s", what, time.Since(t).Round(time.Millisecond)))
		t = time.Now()
	}
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		return "", err
	}
	defer st.Close()
	job, err := st.Job(ctx, name)
	if err != nil {
		return "", err
	}
	step("open")
	if _, err := input.Fingerprint(file, input.Options{}); err != nil {
		return "", err
	}
	step("hash the file (run FILE only)")
	owner := jobs.LockOwner{Token: "bench", PID: os.Getpid(), Host: "bench"}
	if err := st.Lock(ctx, job.ID, owner, time.Minute, func(jobs.LockOwner) bool { return true }); err != nil {
		return "", err
	}
	defer st.Unlock(context.WithoutCancel(ctx), job.ID, owner)
	if _, err := st.Recover(ctx, job.ID); err != nil {
		return "", err
	}
	step("lock and recover")
	sum, err := st.BeginSummary(ctx, job.ID)
	if err != nil {
		return "", err
	}
	step("counts (before the first request)")
	if _, err := st.Claim(ctx, job.ID, 64, time.Now()); err != nil {
		return "", err
	}
	step("first claim")
	// What a run does beside its first requests.
	if _, err := sum.Finish(ctx); err != nil {
		return "", err
	}
	step("usage per model (beside the run)")
	if _, err := st.AnswerFromCache(ctx, job.ID); err != nil {
		return "", err
	}
	step("whole cache pass (100 ms before the first request, the rest beside the run)")
	return strings.Join(parts, ", "), nil
}

// resumeOnce starts `llmbatch run arg`, waits for the fake's first request,
// then stops the run with SIGINT (it drains and exits 130).
func resumeOnce(ctx context.Context, bin string, o *observed, db, arg string) (time.Duration, error) {
	o.reset()
	args := []string{"--db", db, "run", "--base-url", o.URL(), "--concurrency", "64"}
	if arg != "resume" {
		args = append(args, "--job", "resume")
	}
	c, err := startChild(ctx, bin, []string{"OPENAI_API_KEY=" + benchKey}, append(args, arg)...)
	if err != nil {
		return 0, err
	}
	ended := make(chan struct{})
	var res childResult
	var werr error
	go func() {
		res, werr = c.wait()
		close(ended)
	}()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	deadline := time.After(time.Minute)
wait:
	for o.firstAt().IsZero() {
		select {
		case <-t.C:
		case <-ended:
			break wait
		case <-deadline:
			break wait
		}
	}
	first := o.firstAt()
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	<-ended
	if werr != nil {
		return 0, werr
	}
	if first.IsZero() {
		return 0, fmt.Errorf("llmbatch %s sent nothing (exit code %d):\n%s", strings.Join(args, " "), res.code, c.output())
	}
	if res.code != 130 && res.code != 0 {
		return 0, fmt.Errorf("llmbatch run: exit code %d:\n%s", res.code, c.output())
	}
	return first.Sub(c.start), nil
}

// halfDone records the first done requests of the job as succeeded through
// the store, as a run would, and leaves orphans more running.
func halfDone(ctx context.Context, db, name string, done int) error {
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	job, err := st.Job(ctx, name)
	if err != nil {
		return err
	}
	now := time.Now()
	for done > 0 {
		reqs, err := st.Claim(ctx, job.ID, min(done, 1024), now)
		if err != nil {
			return err
		}
		if len(reqs) == 0 {
			return fmt.Errorf("nothing left to claim with %d to do", done)
		}
		outcomes := make([]jobs.Outcome, len(reqs))
		for i, r := range reqs {
			outcomes[i] = success(r, now)
		}
		if err := st.Record(ctx, outcomes); err != nil {
			return err
		}
		done -= len(reqs)
	}
	_, err = st.Claim(ctx, job.ID, orphans, now)
	return err
}

// success is the outcome of a request answered as the fake answers.
func success(r jobs.Request, now time.Time) jobs.Outcome {
	r.Body = nil
	id := "chatcmpl-" + strconv.FormatInt(r.ID, 10)
	raw := `{"id":"` + id + `","object":"chat.completion","created":1700000000,"model":"deepseek/deepseek-v3",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"echo: Summarise item ` + strconv.FormatInt(r.ID, 10) +
		` of the catalogue in one sentence, please, keeping the key facts."},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":28,"completion_tokens":18,"total_tokens":46}}`
	return jobs.Outcome{Request: r, Next: jobs.StatusSucceeded, CountAttempt: true,
		Attempt: &jobs.Attempt{RequestID: r.ID, Number: 1, StartedAt: now, Duration: 3 * time.Millisecond, StatusCode: 200},
		Result: &jobs.Result{StatusCode: 200, ResponseID: id, ProviderRequestID: "req-" + strconv.FormatInt(r.ID, 10),
			Model: "deepseek/deepseek-v3", Raw: []byte(raw), Content: "echo", FinishReason: "stop",
			Usage:   jobs.Usage{Known: true, PromptTokens: 28, CompletionTokens: 18, TotalTokens: 46},
			Latency: 3 * time.Millisecond, CreatedAt: now}}
}
