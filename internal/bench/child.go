package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// child is an llmbatch process the bench started.
type child struct {
	cmd   *exec.Cmd
	out   bytes.Buffer // stdout and stderr
	start time.Time
	// hwm is the child's peak RSS so far (VmHWM), read every hwmEvery,
	// and anon the largest RssAnon read: the peak of its own memory,
	// without the pages of its executable and libraries, whose residence
	// depends on how the file sits in the page cache.
	hwm, anon atomic.Int64
	stopHWM   chan struct{}
	hwmEnded  chan struct{}
}

// childResult is how a child ended and what it used.
type childResult struct {
	wall time.Duration
	cpu  time.Duration
	// maxRSS is the child's peak RSS in bytes: the last VmHWM read from
	// /proc before it exited. getrusage's ru_maxrss of a child cannot be
	// used: Go starts children with vfork, and Linux counts the peak of
	// the memory map an exec replaces, which is the parent's, so every
	// child would seem at least as large as the bench process.
	maxRSS int64
	// maxAnon is the largest RssAnon read (see child.anon).
	maxAnon int64
	code    int
	// runners are the processes of a case several runners share, each
	// its own, when this result adds them up (see together); nil for one.
	runners []childResult
	// server is the CPU time the PostgreSQL server spent for the run
	// (see serverCPU); 0 on SQLite, whose work is the runner's own.
	server time.Duration
	// first and last are the times from the start to the fake's first
	// request and to its last answer: what came before and after is the
	// client's start and exit.
	first, last time.Duration
}

// hwmEvery is how often the child's peak RSS is read. VmHWM only grows, so
// a peak is missed only if it comes in the child's last hwmEvery.
const hwmEvery = 20 * time.Millisecond

// startChild runs the llmbatch binary with args; env is added to this
// process's environment.
func startChild(ctx context.Context, bin string, env []string, args ...string) (*child, error) {
	c := &child{cmd: exec.CommandContext(ctx, bin, args...)}
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	c.cmd.WaitDelay = 5 * time.Second
	c.start = time.Now()
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	c.stopHWM, c.hwmEnded = make(chan struct{}), make(chan struct{})
	go c.watchHWM()
	return c, nil
}

func (c *child) watchHWM() {
	defer close(c.hwmEnded)
	t := time.NewTicker(hwmEvery)
	defer t.Stop()
	for {
		status := readStatus(c.cmd.Process.Pid)
		if v := statusField(status, "VmHWM:"); v > 0 {
			c.hwm.Store(v)
		}
		if v := statusField(status, "RssAnon:"); v > c.anon.Load() {
			c.anon.Store(v)
		}
		select {
		case <-c.stopHWM:
			return
		case <-t.C:
		}
	}
}

// wait waits for the child to end. A non-zero exit is not an error here:
// the caller checks code.
func (c *child) wait() (childResult, error) {
	err := c.cmd.Wait()
	res := childResult{wall: time.Since(c.start)}
	close(c.stopHWM)
	<-c.hwmEnded
	res.maxRSS, res.maxAnon = c.hwm.Load(), c.anon.Load()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return res, err
	}
	ps := c.cmd.ProcessState
	res.code = ps.ExitCode()
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		res.cpu = rusageCPU(ru)
	}
	return res, nil
}

// output is what the child printed, for error messages.
func (c *child) output() string { return strings.TrimSpace(c.out.String()) }

// runChild runs the binary to its end and fails unless it exits with code 0.
func runChild(ctx context.Context, bin string, env []string, args ...string) (childResult, error) {
	c, err := startChild(ctx, bin, env, args...)
	if err != nil {
		return childResult{}, err
	}
	res, err := c.wait()
	if err == nil && res.code != 0 {
		err = fmt.Errorf("llmbatch %s: exit code %d:\n%s", strings.Join(args, " "), res.code, c.output())
	}
	return res, err
}

// rss reads the resident set size of process pid from /proc, or 0.
func rss(pid int) int64 { return procStatus(pid, "VmRSS:") }

// procStatus reads a size field of /proc/PID/status in bytes, or 0.
func procStatus(pid int, field string) int64 { return statusField(readStatus(pid), field) }

// readStatus reads /proc/PID/status, or "" once the process is gone.
func readStatus(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	return string(b)
}

// statusField is a size field of a /proc/PID/status text in bytes, or 0.
func statusField(status, field string) int64 {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
