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
	"syscall"
	"time"
)

// child is an llmbatch process the bench started.
type child struct {
	cmd   *exec.Cmd
	out   bytes.Buffer // stdout and stderr
	start time.Time
}

// childResult is how a child ended and what it used.
type childResult struct {
	wall   time.Duration
	cpu    time.Duration
	maxRSS int64 // bytes, from getrusage after Wait: the peak of the child alone
	code   int
}

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
	return c, nil
}

// wait waits for the child to end. A non-zero exit is not an error here:
// the caller checks code.
func (c *child) wait() (childResult, error) {
	err := c.cmd.Wait()
	res := childResult{wall: time.Since(c.start)}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return res, err
	}
	ps := c.cmd.ProcessState
	res.code = ps.ExitCode()
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		res.cpu = rusageCPU(ru)
		res.maxRSS = ru.Maxrss * 1024 // kilobytes on Linux
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
func rss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
