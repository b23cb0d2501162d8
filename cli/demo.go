package cli

// llmbatch demo: the example job, run with the real run path against a
// stand-in for the provider built into the binary (internal/fakeapi on
// loopback, with a little latency and a few staged faults), so that a
// newcomer sees the whole flow (progress, retries, errors as they happen,
// status, export, report) with no key and no network.

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/store"
	"github.com/llmbatch/llmbatch/worker"
	urfave "github.com/urfave/cli/v2"
)

// demoRequests is the demo's job: the three lines of examples/chat.jsonl
// (cli cannot embed a file above its own folder; a test keeps the copy
// equal), then a few more short prompts, so that the bar has time to move.
//
//go:embed demo.jsonl
var demoRequests []byte

// demoDB is the demo's database unless --db is given on the command line:
// not LLMBATCH_DB, which names the database of the user's own jobs.
const demoDB = "llmbatch-demo.db"

// demoSource is the source a demo job is stored with; it tells the demo's
// jobs from a user's job of the same name in a database given with --db.
const demoSource = "llmbatch demo (built in)"

// demoOptions say how the demo runs.
type demoOptions struct {
	DB string
	// Program is how the user runs llmbatch ("llmbatch", "./llmbatch",
	// "go run ."), for the commands the demo suggests.
	Program string
	// Concurrency, the stand-in's latency (Latency, plus up to Jitter
	// more, drawn per call) and the pause between the events of a stream
	// pace the demo; LogInterval is run's --log-interval.
	Concurrency      int
	Latency, Jitter  time.Duration
	ChunkInterval    time.Duration
	LogInterval      time.Duration
	RetryDelay       time.Duration
	NoColor, Verbose bool
}

// defaultDemo is the demo as `llmbatch demo` runs it: about ten seconds.
var defaultDemo = demoOptions{DB: demoDB, Program: "llmbatch", Concurrency: 2, Latency: 150 * time.Millisecond,
	Jitter: 250 * time.Millisecond, ChunkInterval: 30 * time.Millisecond, LogInterval: 3 * time.Second, RetryDelay: 500 * time.Millisecond}

func (o demoOptions) Validate() error {
	if o.DB == "" || o.Concurrency < 1 || o.LogInterval <= 0 || o.RetryDelay <= 0 {
		return errors.New("demo: a database, a concurrency, a log interval and a retry delay are needed")
	}
	return nil
}

func demoCommand(env func(string) string, stdout, stderr io.Writer) *urfave.Command {
	return &urfave.Command{
		Name:  "demo",
		Usage: "try llmbatch with no API key and no network: run a small example job against a built-in stand-in for the provider",
		Description: `Example:
   llmbatch demo                            # about ten seconds; Ctrl-C, then run it again to resume
   llmbatch --db llmbatch-demo.db status demo

The stand-in answers on loopback only, with canned echoes of the prompts (not a model's
answers), a little latency and a few staged faults (a 429, a 500, a stream cut short), so
that you see progress, retries and errors as they happen; then try status, export and report
on its database. The demo's database is ` + demoDB + ` unless --db is given on the command
line (LLMBATCH_DB is not used: it names your own jobs' database). Run it again after Ctrl-C
to resume the same job; after a demo that finished, it runs a new one (demo-2, demo-3, …).`,
		Flags: []urfave.Flag{
			&urfave.BoolFlag{Name: "verbose", Usage: "print every failed attempt as it ends, as run --verbose does"},
		},
		Action: func(c *urfave.Context) error {
			o := defaultDemo
			o.Program, o.NoColor, o.Verbose = programName(os.Args[0]), env("NO_COLOR") != "", c.Bool("verbose")
			if c.IsSet("db") && c.String("db") != os.Getenv("LLMBATCH_DB") {
				o.DB = c.String("db")
			}
			return runDemo(c.Context, o, stdout, stderr)
		},
	}
}

// programName is how the user ran llmbatch, to repeat in the commands
// the demo suggests: "go run ." for a binary `go run` built, else the
// name or path it was run by.
func programName(arg0 string) string {
	if strings.Contains(arg0, string(os.PathSeparator)+"go-build") {
		return "go run ."
	}
	if arg0 == "" {
		return "llmbatch"
	}
	return shellQuote(arg0)
}

// runDemo runs the demo job against the stand-in and says what to try
// next. The demo's own words go to stdout; the run's, as `run` prints
// them, to stderr.
func runDemo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	name, err := demoJobName(ctx, o.DB)
	if err != nil {
		return err
	}
	file, cleanup, err := writeDemoFile()
	if err != nil {
		return err
	}
	defer cleanup()
	fake := fakeapi.New(demoServer(o))
	defer fake.Close()
	fmt.Fprint(stdout, demoIntro(o, name, fake.URL()))
	err = runJob(ctx, demoRun(o, name, file, fake.URL(), stderr), stdout, stderr)
	if err != nil && !errors.Is(err, jobs.ErrInterrupted) {
		return err
	}
	fmt.Fprint(stdout, demoOutro(o, name, err != nil))
	return err
}

// demoRun is the run the demo makes: what `run` does with these flags,
// the stand-in's URL as --base-url, streamed, and no cache (a second demo
// job would be answered from the first one's results).
func demoRun(o demoOptions, name, file, baseURL string, stderr io.Writer) runOptions {
	in := importOptions{DB: o.DB, Input: file, Job: name, SourceName: demoSource, Warn: stderr,
		Dataset: datasetOptions{Samples: 1, NoCache: true}, Shape: map[string][]string{"stream": {"true"}}}
	return runOptions{importOptions: in, BaseURL: baseURL, StandIn: true, Concurrency: o.Concurrency, MaxAttempts: 8,
		Timeout: 30 * time.Second, DrainTimeout: 10 * time.Second, RetryDelay: o.RetryDelay, MaxRetryDelay: 5 * time.Second,
		MaxResponseBytes: worker.DefaultMaxResponseBytes, Stream: true, StallTimeout: worker.DefaultStallTimeout,
		LogInterval: o.LogInterval, NoColor: o.NoColor, Verbose: o.Verbose, Cache: defaultCacheOptions,
		Resume: o.Program + " " + demoResumeFlags(o) + "demo"}
}

// demoFlags is the --db flag the demo's commands need ("" for the
// default database of commands, which the demo's is not), with a space.
func demoFlags(o demoOptions) string {
	if o.DB == defaultDB {
		return ""
	}
	return "--db " + shellQuote(o.DB) + " "
}

// demoResumeFlags is the --db flag `demo` needs to resume ("" for its
// own default database), with a space.
func demoResumeFlags(o demoOptions) string {
	if o.DB == demoDB {
		return ""
	}
	return "--db " + shellQuote(o.DB) + " "
}

// demoJobName is the job the demo runs: the latest demo job of the
// database while it has requests left (a demo stopped by Ctrl-C resumes),
// else a new one: "demo", then "demo-2", "demo-3"…
func demoJobName(ctx context.Context, db string) (string, error) {
	if _, err := os.Stat(db); err != nil {
		return "demo", nil
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		return "", err
	}
	defer st.Close()
	latest := ""
	for n := 1; ; n++ {
		name := "demo"
		if n > 1 {
			name = fmt.Sprintf("demo-%d", n)
		}
		job, err := st.Job(ctx, name)
		switch {
		case errors.Is(err, jobs.ErrNotFound):
			if latest != "" {
				return latest, nil
			}
			return name, nil
		case err != nil:
			return "", err
		}
		latest = ""
		if job.Source == demoSource && job.State != jobs.JobCancelled {
			open, err := hasOpenRequests(ctx, st, job)
			if err != nil {
				return "", err
			}
			if open {
				latest = name
			}
		}
	}
}

// hasOpenRequests reports whether job has requests not finished.
func hasOpenRequests(ctx context.Context, st jobs.Store, job jobs.Job) (bool, error) {
	stats, err := st.Stats(ctx, job.ID)
	if err != nil {
		return false, err
	}
	return stats.Counts[jobs.StatusPending]+stats.Counts[jobs.StatusRunning] > 0, nil
}

// writeDemoFile writes the demo's requests to a private temporary file,
// for the import to read; cleanup removes it.
func writeDemoFile() (path string, cleanup func(), err error) {
	f, err := os.CreateTemp("", "llmbatch-demo-*.jsonl") // mode 0600
	if err != nil {
		return "", nil, fmt.Errorf("demo: %w", err)
	}
	cleanup = func() { os.Remove(f.Name()) }
	_, err = f.Write(demoRequests)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("demo: %w", err)
	}
	return f.Name(), cleanup, nil
}

// demoFaults are the faults the stand-in stages, at the first attempt of
// the request whose last user message is the key (a test keeps them in
// demo.jsonl): a 429 with Retry-After, a 500 and a stream cut short on
// the three examples, and a few more 429s, so that the rate limits are
// counted as they happen.
var demoFaults = map[string]fakeapi.Fault{
	"What is the capital of France? Answer in one word.":  {Status: 429, Header: map[string]string{"Retry-After": "1"}},
	"A haiku about batch jobs that never lose work.":      {Status: 500},
	"Is 1001 prime? Answer yes or no.":                    {CutAfterChunks: 2},
	"What is the capital of Japan? Answer in one word.":   {Status: 429, Header: map[string]string{"Retry-After": "1"}},
	"Tell me one fact about the Moon.":                    {Status: 429, Header: map[string]string{"Retry-After": "1"}},
	"Write a five-word tagline for a durable job runner.": {Status: 429, Header: map[string]string{"Retry-After": "1"}},
}

// demoServer is the stand-in's configuration: no key, answers after
// o.Latency plus up to o.Jitter (drawn from the prompt and the attempt,
// so a run looks alike each time), and the staged faults.
func demoServer(o demoOptions) fakeapi.Config {
	return fakeapi.Config{Latency: o.Latency, ChunkInterval: o.ChunkInterval, Script: func(c fakeapi.Call) fakeapi.Fault {
		var f fakeapi.Fault
		if c.Attempt == 1 {
			f = demoFaults[c.CustomKey]
		}
		if o.Jitter > 0 {
			h := fnv.New64a()
			fmt.Fprintf(h, "%s\x00%d", c.CustomKey, c.Attempt)
			f.Delay = time.Duration(h.Sum64() % uint64(o.Jitter))
		}
		return f
	}}
}

// demoIntro says what the demo is before it runs.
func demoIntro(o demoOptions, name, url string) string {
	return fmt.Sprintf(`llmbatch demo: a small job run with no API key and no network.
  The requests go to a stand-in for the provider built into llmbatch, at %s (loopback only).
  Its answers are NOT from a model: they echo the prompts. It answers in %s to %s and
  fails a few calls on purpose (a 429, a 500, a stream cut short) to show the retries.
  Job %s: %d requests (examples/chat.jsonl and a few more), database %s.

`, url, o.Latency, o.Latency+o.Jitter, name, strings.Count(string(demoRequests), "\n"), o.DB)
}

// demoOutro says what to try next, after the demo ran (or was stopped).
func demoOutro(o demoOptions, name string, stopped bool) string {
	p, db := o.Program, demoFlags(o)
	var b strings.Builder
	if stopped {
		fmt.Fprintf(&b, "\nllmbatch demo: stopped; nothing is lost: `%s %sdemo` resumes job %s where it stopped.\n", p, demoResumeFlags(o), name)
	} else {
		fmt.Fprintf(&b, "\nllmbatch demo: done. The answers came from the built-in stand-in, not from a model.\n")
	}
	b.WriteString("\nTry next:\n")
	w := tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
	for _, l := range [][2]string{
		{"status " + name, "counts, tokens, latency, error classes"},
		{"export " + name + " --format flat", "the answers, one JSON line each"},
		{"export " + name + " -o results.jsonl", "the OpenAI Batch output lines"},
		{"report " + name + " -o report.html", "an HTML report"},
		{"demo", "again: press Ctrl-C while the bar moves, then run it once more to resume"},
	} {
		flags := db
		if l[0] == "demo" {
			flags = demoResumeFlags(o)
		}
		fmt.Fprintf(w, "  %s %s%s\t# %s\n", p, flags, l[0], l[1])
	}
	fmt.Fprintf(w, "  OPENAI_API_KEY=sk-... %s run examples/chat.jsonl\t# the real thing, with your key\n", p)
	w.Flush()
	return b.String()
}
