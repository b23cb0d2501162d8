package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func init() {
	register(Scenario{
		Name: "import",
		Doc:  "`llmbatch import` of ~300-byte chat lines in a child process: lines/s and peak RSS (VmHWM)",
		Run:  runImport,
	})
}

// Targets of issue 4 for the import of a 1,000,000-line file.
const (
	importRate   = 250_000
	importMaxRSS = 150e6
)

func runImport(ctx context.Context, e *Env) error {
	sizes, err := parseSizes(e.cfg.importLines)
	if err != nil {
		return err
	}
	bin, err := e.binary()
	if err != nil {
		return err
	}
	var peaks []int64
	for _, n := range sizes {
		file, err := e.input(n)
		if err != nil {
			return err
		}
		res, err := importFile(ctx, e, bin, file, fmt.Sprintf("import-%d", n))
		if err != nil {
			return err
		}
		fi, _ := os.Stat(file)
		label := fmt.Sprintf("%s lines (%s)", thousands(float64(n)), mb(fi.Size()))
		rate := perSecond(n, res.wall)
		big := n >= 1_000_000
		e.figure(label, fmt.Sprintf("%s lines/s in %s", thousands(rate), res.wall.Round(10*time.Millisecond)),
			target(big, "≥ 250,000 lines/s"), rate >= importRate)
		e.figure("  peak RSS", mb(res.maxRSS), "≤ 150 MB", res.maxRSS <= importMaxRSS)
		e.figure("  CPU", fmt.Sprintf("%.2f CPU-s (%.0f %% of wall)", res.cpu.Seconds(), 100*res.cpu.Seconds()/res.wall.Seconds()), "", false)
		peaks = append(peaks, res.maxRSS)
	}
	if len(peaks) >= 2 {
		first, last := peaks[0], peaks[len(peaks)-1]
		growth := float64(last) / float64(first)
		e.figure(fmt.Sprintf("peak RSS %s / %s lines", thousands(float64(sizes[len(sizes)-1])), thousands(float64(sizes[0]))),
			fmt.Sprintf("%.2f×", growth), "flat (≤ 1.25×)", growth <= 1.25)
	}
	return nil
}

// importFile runs `llmbatch import` of file into a new database.
func importFile(ctx context.Context, e *Env, bin, file, name string) (childResult, error) {
	db := e.path(name + ".db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(db + suffix)
	}
	return runChild(ctx, bin, nil, "--db", db, "import", "--job", name, file)
}

// target returns t when the figure is one of the targets.
func target(applies bool, t string) string {
	if applies {
		return t
	}
	return ""
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(f, "_", "")))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}
