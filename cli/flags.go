package cli

// Flags shared by several commands: the input flags of run and import
// (dataset, samples, cache), the price flags, and the repeatable string
// flag they use.

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/llmbatch/llmbatch/jobs"
	urfave "github.com/urfave/cli/v2"
)

// priceOptions are the price flags of report, run and import. Prices are
// per million tokens; the currency is only a label.
type priceOptions struct {
	Prices   []string // MODEL=IN:OUT[:CACHED], in flag order
	File     string
	Currency string
	// BatchDiscount is --batch-discount, nil when not given.
	BatchDiscount *float64
}

// priceFlags returns the price flags. --price is a repeatedFlag, so that a
// flag shared by several runs of the app in one process starts empty.
func priceFlags() []urfave.Flag {
	return []urfave.Flag{
		repeatedFlag{&urfave.StringFlag{Name: "price", Usage: "price of a model per million tokens, `MODEL=IN:OUT[:CACHED]`, or MODEL=IN for a model that bills no output (embeddings) (repeatable)"}},
		&urfave.StringFlag{Name: "prices", Usage: `prices ` + "`FILE`" + ` (JSON: {"currency": "USD", "models": {"MODEL": {"input": 0.55, "output": 2.19, "cached": 0.14}}})`},
		&urfave.StringFlag{Name: "currency", Usage: "currency `LABEL` shown with costs (overrides the prices file's)"},
		&urfave.Float64Flag{Name: "batch-discount", Value: jobs.DefaultBatchDiscount, Usage: "the part of the price taken off what a provider batch answers (--mode batch): 0.5 is half price, 0 full price"},
	}
}

func priceOptionsFrom(c *urfave.Context) priceOptions {
	o := priceOptions{File: c.String("prices"), Currency: c.String("currency")}
	if c.IsSet("batch-discount") {
		d := c.Float64("batch-discount")
		o.BatchDiscount = &d
	}
	if l, ok := c.Generic("price").(*stringList); ok {
		o.Prices = *l
	}
	return o
}

// given reports whether the command line gave a price flag.
func (o priceOptions) given() bool {
	return len(o.Prices) > 0 || o.File != "" || o.Currency != "" || o.BatchDiscount != nil
}

// load reads the prices file, then applies each --price and the
// --currency label on top of it.
func (o priceOptions) load() (jobs.Prices, error) {
	var ps jobs.Prices
	if o.File != "" {
		data, err := os.ReadFile(o.File)
		if err != nil {
			return ps, err
		}
		if ps, err = jobs.ParsePrices(data); err != nil {
			return ps, fmt.Errorf("%s: %w", o.File, err)
		}
	}
	for _, spec := range o.Prices {
		model, p, err := jobs.ParsePrice(spec)
		if err != nil {
			return ps, err
		}
		ps.Set(model, p)
	}
	if o.Currency != "" {
		ps.Currency = o.Currency
	}
	if d := o.BatchDiscount; d != nil {
		if *d < 0 || *d > 1 || *d != *d {
			return ps, fmt.Errorf("--batch-discount %v: want a part of the price between 0 and 1 (0.5: half price)", *d)
		}
		ps.BatchDiscount = d
	}
	return ps, nil
}

// dryRunFlag makes run and import validate the file and print what it
// would send and cost, without opening the database (dryrun.go).
var dryRunFlag = &urfave.BoolFlag{Name: "dry-run", Usage: "validate FILE and print the requests per endpoint and model, estimated tokens, worst-case cost (with prices) and duration (with --rpm/--tpm); sends nothing and writes nothing"}

var importFlags = append([]urfave.Flag{
	&urfave.StringFlag{Name: "job", Usage: "job `NAME` (default: the file's base name without extension)"},
	&urfave.StringFlag{Name: "model", Usage: "default `MODEL` for lines that name none"},
	&urfave.BoolFlag{Name: "skip-invalid", Usage: "import the valid lines of a file that has invalid ones; each invalid line (and each later use of a custom_id) is kept as a failed request with error code invalid_input, never sent and never retried, so the run ends with exit 3 and the export lists it (--dry-run still lists every invalid line)"},
}, datasetFlags...)

var datasetFlags = []urfave.Flag{
	&urfave.StringFlag{Name: "template", Usage: "Go text/template `FILE` that renders each dataset record (a JSONL object, a CSV row, a text line as .text) into the user message, or into the whole messages array / request when it renders JSON"},
	&urfave.StringFlag{Name: "input-format", Usage: "`FORMAT` of FILE: jsonl, csv (with a header row) or text (one prompt per line) (default: by extension: .csv, .txt, else jsonl)"},
	&urfave.StringFlag{Name: "system", Usage: "system message `TEXT` put before each dataset prompt"},
	repeatedFlag{&urfave.StringFlag{Name: "param", Usage: "a body field `KEY=VALUE` of each dataset request, repeatable, in order; VALUE is JSON when it parses (temperature=0.7, stop=[\"x\"]), else a string"}},
	&urfave.StringFlag{Name: "endpoint", Usage: "`ENDPOINT` a rendered text goes to: chat (as the user message; default), completions (as the prompt) or embeddings (as the input)"},
	&urfave.StringFlag{Name: "id-field", Usage: "record field `NAME` whose value is the custom_id (default line-N; row-N for CSV)"},
	&urfave.IntFlag{Name: "samples", Value: 1, Usage: "`K` independent completions of every request, with custom_ids ID#0 … ID#K-1"},
	&urfave.BoolFlag{Name: "no-cache", Usage: "run: send every request, even one an identical earlier request (of any job in this database) was answered for"},
}

// repeatedFlag is a string flag that may be given many times. Unlike
// urfave.StringSliceFlag it never splits a value at commas (stop=["a","b"] is
// one value), and each parse gets a fresh list, so that flags shared by
// several runs of the app in one process do not accumulate values.
type repeatedFlag struct{ *urfave.StringFlag }

func (f repeatedFlag) Apply(set *flag.FlagSet) error {
	l := new(stringList)
	for _, name := range f.Names() {
		set.Var(l, name, f.Usage)
	}
	return nil
}

// stringList collects the values of a repeatedFlag; read it with
// c.Generic(name).
type stringList []string

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, " ")
}
