package jobs

import (
	"fmt"
	"strings"
)

// MaxReported is how many line errors a ValidationError lists before it
// only counts the rest.
const MaxReported = 50

// LineError is one invalid line of an input file.
type LineError struct {
	File   string
	Line   int
	Reason string
}

// Error reads "FILE:LINE: reason", or "FILE: reason" for the file as a whole
// (Line 0).
func (e LineError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Reason)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}

// ValidationError lists the invalid lines of a file: the first MaxReported
// of them, and how many there were in all.
type ValidationError struct {
	Errors []LineError
	Total  int
}

// Add records one more invalid line.
func (v *ValidationError) Add(e LineError) {
	v.Total++
	if len(v.Errors) < MaxReported {
		v.Errors = append(v.Errors, e)
	}
}

func (v *ValidationError) Error() string {
	var b strings.Builder
	for i, e := range v.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	if more := v.Total - len(v.Errors); more > 0 {
		lines := "lines"
		if more == 1 {
			lines = "line"
		}
		fmt.Fprintf(&b, "\n… and %d more invalid %s", more, lines)
	}
	return b.String()
}
