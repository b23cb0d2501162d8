package output

// The plan a dry run prints: what the input would send, per endpoint and
// model, what it would cost at worst, and how long it would take at the
// limits given.

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// PlanLimits are the run flags that decide how long a run would take;
// import has none of them.
type PlanLimits struct {
	RPM, TPM, Concurrency int
	// Batch is run --mode batch: the rows are split into input files
	// (PlanRow.Files) and priced at the batch discount.
	Batch bool
}

// PlanRow is what the input sends to one endpoint and model.
type PlanRow struct {
	Endpoint   jobs.Endpoint
	Model      string
	Requests   int64
	Prompt     int64 // estimated prompt tokens
	Completion int64 // worst-case completion tokens
	// Files is how many batch input files the row makes (--mode batch).
	Files int
}

// WritePlan prints the plan: a table per endpoint and model, the totals,
// and the expected duration.
func WritePlan(w io.Writer, input string, rows []PlanRow, ps jobs.Prices, limits PlanLimits) error {
	var total PlanRow
	var cost float64
	priced, unpriced := 0, 0
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "dry run: %s is valid; nothing was sent or stored\n", input)
	head := "ENDPOINT\tMODEL\tREQUESTS\tPROMPT TOKENS (EST.)\tCOMPLETION TOKENS (MAX)\tCOST (MAX)"
	if limits.Batch {
		head += "\tBATCH FILES"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		c, ok := planCost(ps, r)
		if limits.Batch {
			c *= ps.BatchFactor()
		}
		if ok {
			cost += c
			priced++
		} else {
			unpriced++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s", r.Endpoint, r.Model, r.Requests, r.Prompt, r.Completion, ps.FormatCost(c, ok))
		if limits.Batch {
			fmt.Fprintf(tw, "\t%d", r.Files)
		}
		fmt.Fprintln(tw)
		total.Requests, total.Prompt, total.Completion = total.Requests+r.Requests, total.Prompt+r.Prompt, total.Completion+r.Completion
		total.Files += r.Files
	}
	totalCost := ps.FormatCost(cost, unpriced == 0 && len(rows) > 0)
	if unpriced > 0 && priced > 0 {
		totalCost = ps.FormatCost(cost, true) + " + unknown"
	}
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t%s", total.Requests, total.Prompt, total.Completion, totalCost)
	if limits.Batch {
		fmt.Fprintf(tw, "\t%d", total.Files)
	}
	fmt.Fprintln(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	if limits.Batch {
		_, err := fmt.Fprintf(w, "batch mode: %s through the provider's Batch API, priced at %g of the price; answers within its 24 h window\n",
			Plural(total.Files, "input file"), ps.BatchFactor())
		return err
	}
	_, err := fmt.Fprintf(w, "expected duration: %s\n", planDuration(total, limits))
	return err
}

// planCost is the worst-case cost of a row, and false without a price for
// its model (or without an output price for a model with output).
func planCost(ps jobs.Prices, r PlanRow) (float64, bool) {
	p, ok := ps.ByModel[r.Model]
	if !ok {
		return 0, false
	}
	return p.Cost(r.Prompt, 0, r.Completion)
}

// planDuration is max(requests/rpm, tokens/tpm) minutes, tokens being the
// prompt estimate plus the worst-case completion, as the --tpm limiter
// charges them. It ignores latency: --concurrency bounds the requests in
// flight, not the rate, so without --rpm or --tpm the duration is unknown.
func planDuration(total PlanRow, l PlanLimits) string {
	if l.RPM <= 0 && l.TPM <= 0 {
		return "unknown without --rpm/--tpm (the rate then depends on the API's latency, with at most --concurrency requests in flight)"
	}
	var minutes float64
	var why string
	if l.RPM > 0 {
		minutes = float64(total.Requests) / float64(l.RPM)
		why = fmt.Sprintf("%s / --rpm %d", Plural(int(total.Requests), "request"), l.RPM)
	}
	if l.TPM > 0 {
		tokens := total.Prompt + total.Completion
		if m := float64(tokens) / float64(l.TPM); m > minutes || why == "" {
			minutes = m
			why = fmt.Sprintf("%s (worst case) / --tpm %d", Plural(int(tokens), "token"), l.TPM)
		}
	}
	d := time.Duration(math.Ceil(minutes*60)) * time.Second
	return fmt.Sprintf("at least %s (%s; max of requests/rpm and tokens/tpm, in minutes, with --concurrency %d)", d, why, l.Concurrency)
}
