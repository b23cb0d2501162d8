package cli

// The command line is checked here before urfave/cli reads it, so that a
// mistake gets one line and exit 2 instead of the whole help, and put in
// the order urfave/cli reads: global flags, the command, its flags, then
// its arguments.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	urfave "github.com/urfave/cli/v2"
)

// parseArgs checks args against app's commands and flags and returns them
// in urfave/cli's order. urfave/cli v2 stops reading flags at the first
// argument, so `export JOB -o FILE` would otherwise leave "-o FILE" among
// the arguments, and it reads global flags only before the command, so
// `status JOB --db PATH` would otherwise be an unknown flag. Everything
// after "--" stays an argument. A mistake is a usage error: an unknown
// command or flag (with the closest name when one is close), a flag
// without its value, or a value its flag cannot read.
func parseArgs(app *urfave.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	out := []string{args[0]}
	i := 1
	for i < len(args) && isFlag(args[i]) { // global flags
		n, err := checkFlag(args[i:], app.Flags, nil, "llmbatch --help")
		if err != nil {
			return nil, err
		}
		out = append(out, args[i:i+n]...)
		i += n
	}
	if i >= len(args) {
		return out, nil
	}
	name := args[i]
	if isHelp(name) {
		// `llmbatch help [COMMAND]`: urfave/cli's own help command.
		if i+1 < len(args) && !isFlag(args[i+1]) && app.Command(args[i+1]) == nil {
			return nil, unknownCommand(app, args[i+1])
		}
		return append(out, args[i:]...), nil
	}
	cmd := app.Command(name)
	if cmd == nil {
		return nil, unknownCommand(app, name)
	}
	c, err := splitCommandArgs(app, cmd, args[i+1:])
	if err != nil {
		return nil, err
	}
	out = append(append(out, c.globals...), name)
	if c.help {
		// urfave/cli would read the first argument as a help topic.
		return append(out, "--help"), nil
	}
	return append(append(out, c.flags...), c.positional...), nil
}

// commandArgs are the tokens after a command, sorted.
type commandArgs struct {
	globals, flags, positional []string
	help                       bool // -h or --help is among the flags
}

// splitCommandArgs sorts what follows cmd into global flags, cmd's flags
// and arguments, each flag with its value, checking every flag.
func splitCommandArgs(app *urfave.App, cmd *urfave.Command, args []string) (commandArgs, error) {
	var c commandArgs
	help := "llmbatch " + cmd.Name + " --help"
	for i := 0; i < len(args); {
		a := args[i]
		if a == "--" {
			c.positional = append(c.positional, args[i:]...)
			break
		}
		if !isFlag(a) {
			c.positional = append(c.positional, a)
			i++
			continue
		}
		n, err := checkFlag(args[i:], cmd.Flags, app.Flags, help)
		if err != nil {
			return c, err
		}
		name := flagName(a)
		switch {
		case isHelpFlag(name):
			c.help = true
		case lookupFlag(cmd.Flags, name) == nil:
			c.globals = append(c.globals, args[i:i+n]...)
		default:
			c.flags = append(c.flags, args[i:i+n]...)
		}
		i += n
	}
	return c, nil
}

// checkFlag checks the flag that starts args, one of own or else of
// global, and returns how many tokens it takes: 1, or 2 with its value.
// help names the command whose --help lists the flags.
func checkFlag(args []string, own, global []urfave.Flag, help string) (int, error) {
	a := args[0]
	name := flagName(a)
	if isHelpFlag(name) {
		return 1, nil
	}
	f := lookupFlag(own, name)
	if f == nil {
		f = lookupFlag(global, name)
	}
	if f == nil {
		return 0, unknownFlag(name, append(append([]urfave.Flag{}, own...), global...), help)
	}
	_, value, inline := strings.Cut(a, "=")
	n := 1
	if !inline {
		if isBool(f) {
			return 1, nil
		}
		if len(args) < 2 {
			return 0, usagef("flag %s needs a value", dashed(name))
		}
		value, n = args[1], 2
	}
	return n, checkValue(f, name, value)
}

// checkValue parses value as urfave/cli will, through the flag's own
// flag.Value, and says what a wrong one should look like.
func checkValue(f urfave.Flag, name, value string) error {
	set := flag.NewFlagSet(name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	if err := f.Apply(set); err != nil {
		return nil // urfave/cli reports this one itself
	}
	err := set.Set(name, value)
	if err == nil {
		return nil
	}
	flagText := dashed(name)
	switch f.(type) {
	case *urfave.DurationFlag:
		if _, numErr := strconv.ParseFloat(value, 64); numErr == nil {
			return usagef("invalid value %q for %s: a duration needs a unit; use 30s, 10m", value, flagText)
		}
		return usagef("invalid value %q for %s: not a duration; use 30s, 10m", value, flagText)
	case *urfave.IntFlag, *urfave.Int64Flag, *urfave.UintFlag, *urfave.Uint64Flag:
		if _, numErr := strconv.ParseInt(value, 0, 64); errors.Is(numErr, strconv.ErrRange) {
			return usagef("invalid value %q for %s: out of range", value, flagText)
		}
		return usagef("invalid value %q for %s: want a whole number", value, flagText)
	case *urfave.Float64Flag:
		return usagef("invalid value %q for %s: want a number", value, flagText)
	case *urfave.BoolFlag:
		return usagef("invalid value %q for %s: want true or false", value, flagText)
	}
	// Other values may be anything, a secret too: not repeated.
	return usagef("invalid value for %s: %v", flagText, err)
}

// usagef is a mistake in the command line: exit 2, one line.
func usagef(format string, a ...any) error {
	return usageError{fmt.Errorf(format, a...)}
}

func unknownCommand(app *urfave.App, name string) error {
	var names []string
	for _, c := range app.Commands {
		names = append(names, c.Names()...)
	}
	if s := closest(name, names); s != "" {
		return usagef("unknown command %q; did you mean %q?", name, s)
	}
	return usagef("unknown command %q (llmbatch --help lists the commands)", name)
}

func unknownFlag(name string, flags []urfave.Flag, help string) error {
	var names []string
	for _, f := range flags {
		names = append(names, f.Names()...)
	}
	if s := closest(name, names); s != "" {
		return usagef("unknown flag %s; did you mean %s?", dashed(name), dashed(s))
	}
	return usagef("unknown flag %s (%s lists the flags)", dashed(name), help)
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

// flagName is the name in a flag token: "db" in "--db=x", "-db" or "--db".
func flagName(a string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	return name
}

// dashed writes a flag name as the help does: -h, --db.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func isHelp(name string) bool { return name == "help" || name == "h" }

func isHelpFlag(name string) bool {
	for _, n := range urfave.HelpFlag.Names() {
		if n == name {
			return true
		}
	}
	return false
}

func lookupFlag(flags []urfave.Flag, name string) urfave.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func isBool(f urfave.Flag) bool {
	_, ok := f.(*urfave.BoolFlag)
	return ok
}

// closest returns the name of names nearest to s when it is near enough to
// be what was meant: within one edit for every five letters (at least
// one, at most three), a swap of two neighbours counting as one.
func closest(s string, names []string) string {
	best, bestD := "", min(1+len(s)/5, 3)+1
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours, one each.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2, prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
