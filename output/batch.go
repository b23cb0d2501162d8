package output

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/llmbatch/llmbatch/jobs"
)

// BatchEventLine is the log line of something a batch-mode run did or
// saw ("" for what is not worth a line).
func BatchEventLine(job, kind string, b jobs.ProviderBatch, left int, text string) string {
	head := fmt.Sprintf("llmbatch: job %s: batch %d", job, b.ID)
	switch kind {
	case "submitted":
		return fmt.Sprintf("%s submitted: %s of %s to %s (%s)", head, Plural(b.Requests, "request"), b.Model, b.Endpoint, b.BatchID)
	case "progress":
		return fmt.Sprintf("%s %s: %d of %d done, %d failed", head, b.ProviderStatus, b.Counts.Completed, b.Counts.Total, b.Counts.Failed)
	case "ended":
		s := fmt.Sprintf("%s %s: %d of %d done, %d failed", head, b.ProviderStatus, b.Counts.Completed, b.Counts.Total, b.Counts.Failed)
		if b.Message != "" {
			s += ": " + oneLine(b.Message)
		}
		return s
	case "collected":
		return fmt.Sprintf("%s collected: %s; %d unanswered back to pending", head, text, left)
	case "split", "refused":
		return fmt.Sprintf("%s refused by the provider: %s; %s", head, oneLine(b.Message), text)
	case "waiting":
		return fmt.Sprintf("llmbatch: job %s: batches %s", job, text)
	case "retrying":
		return fmt.Sprintf("llmbatch: job %s: batch API: %s", job, text)
	}
	return ""
}

// WriteBatches writes the table of a job's provider batches, for status.
func WriteBatches(w io.Writer, batches []jobs.ProviderBatch) {
	if len(batches) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "provider batches")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tSTATE\tPROVIDER\tMODEL\tREQUESTS\tDONE\tFAILED\tBATCH\tMESSAGE")
	for _, b := range batches {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", b.ID, b.State, dash(b.ProviderStatus), b.Model,
			b.Requests, b.Counts.Completed, b.Counts.Failed, dash(b.BatchID), cutText(oneLine(b.Message), 80))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
