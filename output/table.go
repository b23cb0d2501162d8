package output

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/llmbatch/llmbatch/jobs"
)

// WriteJobs writes the job list as a table, one job a line, in the order
// given: NAME STATE TOTAL PENDING RUNNING SUCCEEDED FAILED CANCELLED CREATED.
// With no jobs it writes only the header.
func WriteJobs(w io.Writer, list []jobs.JobSummary) error {
	ew := &errWriter{w: w}
	tw := newTable(ew)
	row(tw, "NAME", "STATE", "TOTAL", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "CREATED")
	for _, j := range list {
		cells := []string{j.Name, string(j.State), fmt.Sprint(j.Total)}
		for _, st := range jobs.Statuses {
			cells = append(cells, fmt.Sprint(j.Counts[st]))
		}
		row(tw, append(cells, formatTime(j.CreatedAt))...)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return ew.err
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

// row writes one table line. Tabs and line breaks in a cell would break the
// table, so they become spaces.
func row(tw *tabwriter.Writer, cells ...string) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(tw, "\t")
		}
		io.WriteString(tw, cellReplacer.Replace(c))
	}
	io.WriteString(tw, "\n")
}

var cellReplacer = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ", "\v", " ", "\f", " ")

// errWriter keeps the first error of w, so that a view can write freely and
// check once at the end.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
