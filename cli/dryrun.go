package cli

// The --dry-run of run and import: read and validate the input as an
// import would, then print what running it would send and cost, without
// opening the database or sending anything.

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
	"github.com/llmbatch/llmbatch/worker"
)

// runDryRun validates the input with the import's readers and prints the
// plan to stdout. An invalid input is the import's error, exit 1.
func runDryRun(opts importOptions, prices priceOptions, limits output.PlanLimits, batch batchOptions, stdout io.Writer) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	if opts.Input == "-" && opts.Job == "" {
		opts.Job = "-" // a dry run makes no job: standard input needs no name
	}
	opts, cleanup, err := spoolStdin(opts)
	if err != nil {
		return err
	}
	defer cleanup()
	ps, err := prices.load()
	if err != nil {
		return err
	}
	rows, err := planOf(opts, batch)
	if err != nil {
		return err
	}
	return output.WritePlan(stdout, opts.source(), rows, ps, limits)
}

// planOf reads the whole input, rejecting a custom_id used twice as the
// import does (the sources hand out every valid line, also after an
// invalid one, so both list the same lines), and sums it per endpoint and
// model, sorted by both.
func planOf(opts importOptions, batch batchOptions) ([]output.PlanRow, error) {
	src, err := openSource(opts)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	byKey := map[[2]string]*output.PlanRow{}
	files := map[[2]string]*batchFile{}
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
			row = &output.PlanRow{Endpoint: r.Endpoint, Model: r.Model}
			byKey[k] = row
		}
		if batch.Mode == modeBatch {
			files[k] = files[k].add(row, r, batch)
		}
		p, c := worker.EstimateParts(r.Body)
		row.Requests, row.Prompt, row.Completion = row.Requests+1, row.Prompt+p, row.Completion+c
	}
	var ve *jobs.ValidationError
	if err := src.Err(); errors.As(err, &ve) {
		return nil, fmt.Errorf("%s is invalid; nothing was imported or sent:\n%w", opts.source(), err)
	} else if err != nil {
		return nil, err
	}
	rows := make([]output.PlanRow, 0, len(byKey))
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

// batchFile is the input file a dry run of --mode batch is filling for one
// endpoint and model: the run's planner starts a new one at the same
// limits.
type batchFile struct {
	requests int
	bytes    int64
}

func (f *batchFile) add(row *output.PlanRow, r jobs.Request, o batchOptions) *batchFile {
	n := int64(worker.BatchLineSize(r))
	if f == nil || f.requests >= o.MaxRequests || f.bytes+n > o.MaxBytes {
		f = &batchFile{}
		row.Files++
	}
	f.requests++
	f.bytes += n
	return f
}
