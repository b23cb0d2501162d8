package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

func init() {
	register(Scenario{
		Name: "memory",
		Doc:  "`llmbatch run FILE` of 1,000,000 requests at zero latency in a child process: peak RSS",
		Huge: true,
		Run:  runMemory,
	})
}

// runMaxRSS is issue 4's bound on a run's RSS.
const runMaxRSS = 250e6

func runMemory(ctx context.Context, e *Env) error {
	n := e.cfg.hugeN
	bin, err := e.binary()
	if err != nil {
		return err
	}
	file, err := e.input(n)
	if err != nil {
		return err
	}
	o := newObserved(fakeapi.Config{Key: benchKey})
	defer o.close()
	c, err := startChild(ctx, bin, []string{"OPENAI_API_KEY=" + benchKey}, "--db", e.path("memory.db"), "run",
		"--job", "memory", "--base-url", o.URL(), "--concurrency", strconv.Itoa(e.cfg.concurrency), file)
	if err != nil {
		return err
	}
	samples := sampleRSS(c, o, n)
	res, err := c.wait()
	close(samples.stop)
	<-samples.done
	if err != nil {
		return err
	}
	if res.code != 0 {
		return fmt.Errorf("llmbatch run: exit code %d:\n%s", res.code, c.output())
	}
	if got := o.done.Load(); got < int64(n) {
		return fmt.Errorf("the fake finished %d requests of %d", got, n)
	}
	first := o.firstAt()
	e.figure("peak RSS (VmHWM, import included)", mb(res.maxRSS), "< 250 MB", res.maxRSS < runMaxRSS)
	e.figure("RSS at 0/25/50/75/100 % sent", samples.String(), "", false)
	if !first.IsZero() {
		importTime := first.Sub(c.start)
		runTime := res.wall - importTime
		e.figure("import, then run", fmt.Sprintf("%s + %s", importTime.Round(100*time.Millisecond), runTime.Round(100*time.Millisecond)), "", false)
		e.figure("run throughput", fmt.Sprintf("%s req/s", thousands(perSecond(n, runTime))), "", false)
	}
	e.figure("CPU", fmt.Sprintf("%.1f CPU-s (%.3f per 1,000 requests)", res.cpu.Seconds(), res.cpu.Seconds()*1000/float64(n)), "", false)
	return nil
}

// rssSamples is the child's RSS when the fake had finished 0, 25, 50, 75 and
// 100 % of the requests.
type rssSamples struct {
	at         [5]int64
	stop, done chan struct{}
}

func (s *rssSamples) String() string {
	var parts []string
	for _, v := range s.at {
		parts = append(parts, fmt.Sprintf("%.0f", float64(v)/1e6))
	}
	return strings.Join(parts, " / ") + " MB"
}

// sampleRSS reads the child's RSS every 100 ms and keeps the first sample
// past each quarter of the requests.
func sampleRSS(c *child, o *observed, n int) *rssSamples {
	s := &rssSamples{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		next := 0
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			v := rss(c.cmd.Process.Pid)
			if v == 0 {
				continue
			}
			done := o.done.Load()
			if next == 0 && done > 0 {
				s.at[0], next = v, 1
			}
			for next > 0 && next < len(s.at) && done*4 >= int64(n*next) {
				s.at[next] = v
				next++
			}
			if next == len(s.at)-1 {
				s.at[next] = max(s.at[next], v) // the last sample before the end
			}
		}
	}()
	return s
}
