package cli

// The --dry-run of run and import: read and validate the input as an
// import would, then print what running it would send and cost, without
// opening the database or sending anything.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	"github.com/llmbatch/llmbatch/worker"
)

// dryRunLimits are the run flags that decide how long the run would take;
// import has none of them.
type dryRunLimits struct {
	RPM, TPM, Concurrency int
}

// planRow is what the input sends to one endpoint and model.
type planRow struct {
	Endpoint   jobs.Endpoint
	Model      string
	Requests   int64
	Prompt     int64 // estimated prompt tokens
	Completion int64 // worst-case completion tokens
}

// runDryRun validates the input with the import's readers and prints the
// plan to stdout. An invalid input is the import's error, exit 1.
func runDryRun(opts importOptions, prices priceOptions, limits dryRunLimits, stdout io.Writer) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	ps, err := prices.load()
	if err != nil {
		return err
	}
	rows, err := planOf(opts)
	if err != nil {
		return err
	}
	return writePlan(stdout, opts.Input, rows, ps, limits)
}

// planOf reads the whole input, rejecting a custom_id used twice as the
// import does (the sources hand out every valid line, also after an
// invalid one, so both list the same lines), and sums it per endpoint and
// model, sorted by both.
func planOf(opts importOptions) ([]planRow, error) {
	src, err := openSource(opts)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	byKey := map[[2]string]*planRow{}
	firstLine := map[string]int{} // the import finds duplicates with its UNIQUE constraint; a dry run has none
	for {
		r, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if first, ok := firstLine[r.CustomID]; ok {
			src.Reject(r.Line, fmt.Sprintf("duplicate custom_id %q (first used on line %d)", r.CustomID, first))
			continue
		}
		firstLine[r.CustomID] = r.Line
		k := [2]string{string(r.Endpoint), r.Model}
		row := byKey[k]
		if row == nil {
			row = &planRow{Endpoint: r.Endpoint, Model: r.Model}
			byKey[k] = row
		}
		p, c := worker.EstimateParts(r.Body)
		row.Requests, row.Prompt, row.Completion = row.Requests+1, row.Prompt+p, row.Completion+c
	}
	var ve *jobs.ValidationError
	if err := src.Err(); errors.As(err, &ve) {
		return nil, fmt.Errorf("%s is invalid; nothing was imported or sent:\n%w", opts.Input, err)
	} else if err != nil {
		return nil, err
	}
	rows := make([]planRow, 0, len(byKey))
	for _, r := range byKey {
		rows = append(rows, *r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Endpoint != rows[j].Endpoint {
			return rows[i].Endpoint < rows[j].Endpoint
		}
		return rows[i].Model < rows[j].Model
	})
	return rows, nil
}

// writePlan prints the plan: a table per endpoint and model, the totals,
// and the expected duration.
func writePlan(w io.Writer, input string, rows []planRow, ps jobs.Prices, limits dryRunLimits) error {
	var total planRow
	var cost float64
	priced, unpriced := 0, 0
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "dry run: %s is valid; nothing was sent or stored\n", input)
	fmt.Fprintln(tw, "ENDPOINT\tMODEL\tREQUESTS\tPROMPT TOKENS (EST.)\tCOMPLETION TOKENS (MAX)\tCOST (MAX)")
	for _, r := range rows {
		c, ok := planCost(ps, r)
		if ok {
			cost += c
			priced++
		} else {
			unpriced++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", r.Endpoint, r.Model, r.Requests, r.Prompt, r.Completion, ps.FormatCost(c, ok))
		total.Requests, total.Prompt, total.Completion = total.Requests+r.Requests, total.Prompt+r.Prompt, total.Completion+r.Completion
	}
	totalCost := ps.FormatCost(cost, unpriced == 0 && len(rows) > 0)
	if unpriced > 0 && priced > 0 {
		totalCost = ps.FormatCost(cost, true) + " + unknown"
	}
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t%s\n", total.Requests, total.Prompt, total.Completion, totalCost)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "expected duration: %s\n", planDuration(total, limits))
	return err
}

// planCost is the worst-case cost of a row, and false without a price for
// its model.
func planCost(ps jobs.Prices, r planRow) (float64, bool) {
	p, ok := ps.ByModel[r.Model]
	if !ok {
		return 0, false
	}
	return p.Cost(r.Prompt, 0, r.Completion), true
}

// planDuration is max(requests/rpm, tokens/tpm) minutes, tokens being the
// prompt estimate plus the worst-case completion, as the --tpm limiter
// charges them. It ignores latency: --concurrency bounds the requests in
// flight, not the rate, so without --rpm or --tpm the duration is unknown.
func planDuration(total planRow, l dryRunLimits) string {
	if l.RPM <= 0 && l.TPM <= 0 {
		return "unknown without --rpm/--tpm (the rate then depends on the API's latency, with at most --concurrency requests in flight)"
	}
	var minutes float64
	var why string
	if l.RPM > 0 {
		minutes = float64(total.Requests) / float64(l.RPM)
		why = fmt.Sprintf("%s / --rpm %d", output.Plural(int(total.Requests), "request"), l.RPM)
	}
	if l.TPM > 0 {
		tokens := total.Prompt + total.Completion
		if m := float64(tokens) / float64(l.TPM); m > minutes || why == "" {
			minutes = m
			why = fmt.Sprintf("%s (worst case) / --tpm %d", output.Plural(int(tokens), "token"), l.TPM)
		}
	}
	d := time.Duration(math.Ceil(minutes*60)) * time.Second
	return fmt.Sprintf("at least %s (%s; max of requests/rpm and tokens/tpm, in minutes, with --concurrency %d)", d, why, l.Concurrency)
}
