package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Scenario is one measurement. To add one (for example the rate-limit
// scenarios: a fake that answers 429 above 3,000 requests/minute, run with
// and without --rpm), write a file with an init function that calls
// register; Run prints its figures with Env.figure.
type Scenario struct {
	// Name is what -only selects.
	Name string
	// Doc says in one line what is measured, with its sizes.
	Doc string
	// Huge scenarios take minutes and run only with -huge or -only.
	Huge bool
	Run  func(ctx context.Context, e *Env) error
}

// scenarios is the registry, in the order they run.
var scenarios []Scenario

func register(s Scenario) { scenarios = append(scenarios, s) }

// Env is what scenarios share: the flags, the work directory with its
// generated input files, the llmbatch binary and the tally of targets.
type Env struct {
	cfg config
	dir string
	tmp bool

	binOnce sync.Once
	bin     string
	binErr  error

	inputs map[int]string // generated input files by line count

	met, missed int
}

func newEnv(c config) (*Env, error) {
	e := &Env{cfg: c, dir: c.dir, inputs: map[int]string{}}
	if e.dir == "" {
		d, err := os.MkdirTemp("", "llmbatch-bench-")
		if err != nil {
			return nil, err
		}
		e.dir, e.tmp = d, true
	} else if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Env) close() {
	if e.tmp && !e.cfg.keep {
		os.RemoveAll(e.dir)
	}
}

// rounds is -rounds, or def when it was not given.
func (e *Env) rounds(def int) int {
	if e.cfg.rounds > 0 {
		return e.cfg.rounds
	}
	return def
}

// path names a file in the work directory.
func (e *Env) path(name string) string { return filepath.Join(e.dir, name) }

// input returns a generated input file of n chat lines, writing it the
// first time.
func (e *Env) input(n int) (string, error) {
	if p, ok := e.inputs[n]; ok {
		return p, nil
	}
	p := e.path(fmt.Sprintf("input-%d.jsonl", n))
	if err := writeInput(p, n); err != nil {
		return "", err
	}
	e.inputs[n] = p
	return p, nil
}

// binary returns the llmbatch binary: -bin, or one built once with go build.
func (e *Env) binary() (string, error) {
	e.binOnce.Do(func() {
		if e.cfg.bin != "" {
			e.bin = e.cfg.bin
			return
		}
		e.bin = e.path("llmbatch")
		out, err := exec.Command("go", "build", "-o", e.bin, "github.com/llmbatch/llmbatch").CombinedOutput()
		if err != nil {
			e.binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	return e.bin, e.binErr
}

// figure prints one measured value. target is empty for a figure without
// one; otherwise ok says whether it is met.
func (e *Env) figure(name, value, target string, ok bool) {
	mark := ""
	if target != "" {
		mark = "MISSED"
		if ok {
			mark = "ok"
		}
		target = "target " + target
		e.tally(ok)
	}
	fmt.Printf("   %-40s %-34s %-24s %s\n", name, value, target, mark)
}

// tally counts a target met or missed.
func (e *Env) tally(ok bool) {
	if ok {
		e.met++
	} else {
		e.missed++
	}
}

// target is a table's cell for a target, counted: "≥ 0.70× ok".
func (e *Env) target(target string, ok bool) string {
	e.tally(ok)
	if ok {
		return target + " ok"
	}
	return target + " MISSED"
}

// table prints rows (the first the header) in columns, as figures are.
func (e *Env) table(rows [][]string) {
	var widths []int
	for _, r := range rows {
		for i, cell := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	for _, r := range rows {
		line := "  "
		for i, cell := range r {
			line += " " + cell + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
		}
		fmt.Println(strings.TrimRight(line, " "))
	}
}

// cases are the engine cases -engines and -runners ask for.
func (e *Env) cases() ([]engineCase, error) {
	engines, runners := e.cfg.engines, e.cfg.runners
	if engines == "" {
		engines = "sqlite"
	}
	if runners == "" {
		runners = "1"
	}
	return engineCases(engines, runners)
}

// note prints a line of context under the figures.
func (e *Env) note(format string, args ...any) {
	fmt.Printf("   · "+format+"\n", args...)
}

// cpuTime is the CPU time (user + system) this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return rusageCPU(&ru)
}

func rusageCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perSecond formats n events over d as a rate.
func perSecond(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// thousands formats x with thousands separators and no decimals.
func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// mb formats a byte count in MB (10^6 bytes, as targets are written).
func mb(bytes int64) string { return fmt.Sprintf("%.1f MB", float64(bytes)/1e6) }
