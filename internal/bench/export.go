package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/input"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store/sqlite"
)

func init() {
	register(Scenario{
		Name: "export",
		Doc:  "`llmbatch export` of a finished 1,000,000-request job (1 % failed) to parquet, csv and flat in a child process: time and peak RSS (VmHWM)",
		Huge: true,
		Run:  runExport,
	})
}

// exportMaxRSS is issue 16's bound on an export's RSS.
const exportMaxRSS = 250e6

func runExport(ctx context.Context, e *Env) error {
	n := e.cfg.hugeN
	bin, err := e.binary()
	if err != nil {
		return err
	}
	file, err := e.input(n)
	if err != nil {
		return err
	}
	db := e.path("export.db")
	start := time.Now()
	if err := finishedJob(ctx, db, "export", file); err != nil {
		return fmt.Errorf("build the job: %w", err)
	}
	fi, _ := os.Stat(db)
	e.note("job of %s requests imported and answered through the store in %s (database %s)",
		thousands(float64(n)), time.Since(start).Round(100*time.Millisecond), mb(fi.Size()))
	for _, f := range []struct{ label, format string }{
		{"parquet", "parquet"},
		{"parquet --with-request", "parquet"},
		{"csv", "csv"},
		{"flat", "flat"},
	} {
		out := e.path("export." + f.format)
		args := []string{"--db", db, "export", "--format", f.format, "-o", out}
		if strings.HasSuffix(f.label, "--with-request") {
			args = append(args, "--with-request")
		}
		res, err := runChild(ctx, bin, nil, append(args, "export")...)
		if err != nil {
			return err
		}
		size := int64(0)
		if fi, err := os.Stat(out); err == nil {
			size = fi.Size()
		}
		os.Remove(out)
		e.figure(f.label, fmt.Sprintf("%s in %s (%s rows/s), %s", thousands(float64(n)), res.wall.Round(10*time.Millisecond),
			thousands(perSecond(n, res.wall)), mb(size)), "", false)
		e.figure("  peak RSS", mb(res.maxRSS), "< 250 MB", res.maxRSS < exportMaxRSS)
	}
	return nil
}

// finishedJob imports file into a new database at db as the job name, then
// records every request as answered (one in a hundred failed with a 400),
// through the store as a run would, without a server.
func finishedJob(ctx context.Context, db, name, file string) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(db + suffix)
	}
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	src, err := input.Open(file, input.Options{})
	if err != nil {
		return err
	}
	defer src.Close()
	job, err := st.Import(ctx, jobs.Job{Name: name, Source: file}, src)
	if err != nil {
		return err
	}
	now := time.Now()
	for {
		reqs, err := st.Claim(ctx, job.ID, 1024, now)
		if err != nil || len(reqs) == 0 {
			return err
		}
		outcomes := make([]jobs.Outcome, len(reqs))
		for i, r := range reqs {
			outcomes[i] = answered(r, now)
		}
		if err := st.Record(ctx, outcomes); err != nil {
			return err
		}
	}
}

// answered is request r answered as a model would: a few sentences of
// text that differ from request to request (so that compression gets no
// more than real answers give it), or, for one request in a hundred, a 400.
func answered(r jobs.Request, now time.Time) jobs.Outcome {
	r.Body = nil
	attempt := &jobs.Attempt{RequestID: r.ID, Number: 1, StartedAt: now, Duration: 800 * time.Millisecond, StatusCode: 200}
	if r.ID%100 == 0 {
		attempt.StatusCode, attempt.Class = 400, jobs.ClassInvalidRequest
		body := `{"error":{"message":"max_tokens is too large","type":"invalid_request_error"}}`
		return jobs.Outcome{Request: r, Next: jobs.StatusFailed, CountAttempt: true, Attempt: attempt,
			Failure: &jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "max_tokens is too large",
				Body: []byte(body), RequestID: "req-" + strconv.FormatInt(r.ID, 10)}}
	}
	content := answerText(r.ID)
	id := "chatcmpl-" + strconv.FormatInt(r.ID, 10)
	raw := `{"id":"` + id + `","object":"chat.completion","created":1700000000,"model":"deepseek/deepseek-v3",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":` + strconv.Quote(content) + `},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":28,"completion_tokens":` + strconv.Itoa(len(content)/4) + `,"total_tokens":` +
		strconv.Itoa(28+len(content)/4) + `}}`
	return jobs.Outcome{Request: r, Next: jobs.StatusSucceeded, CountAttempt: true, Attempt: attempt,
		Result: &jobs.Result{StatusCode: 200, ResponseID: id, ProviderRequestID: "req-" + strconv.FormatInt(r.ID, 10),
			Model: "deepseek/deepseek-v3", Raw: []byte(raw), Content: content, FinishReason: "stop",
			Usage:   jobs.Usage{Known: true, PromptTokens: 28, CompletionTokens: int64(len(content) / 4), TotalTokens: int64(28 + len(content)/4)},
			Latency: 800 * time.Millisecond, CreatedAt: now}}
}

var answerWords = strings.Fields(`the item catalogue summary key facts include its price weight colour origin
	maker year material size warranty rating stock delivery returns reviews customers often mention quality value
	durability design comfort battery screen sound speed support`)

// answerText is about 400 bytes of words drawn by a hash of id.
func answerText(id int64) string {
	var b strings.Builder
	x := uint64(id)*0x9e3779b97f4a7c15 + 1
	for b.Len() < 400 {
		x ^= x >> 31
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 29
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(answerWords[x%uint64(len(answerWords))])
	}
	b.WriteByte('.')
	return b.String()
}
