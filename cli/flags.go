package cli

import (
	"fmt"
	"os"

	"github.com/llmbatch/llmbatch/jobs"
	urfave "github.com/urfave/cli/v2"
)

// priceOptions are the price flags of report, run and import. Prices are
// per million tokens; the currency is only a label.
type priceOptions struct {
	Prices   []string // MODEL=IN:OUT[:CACHED], in flag order
	File     string
	Currency string
}

// priceFlags returns the price flags. --price is a repeatedFlag, so that a
// flag shared by several runs of the app in one process starts empty.
func priceFlags() []urfave.Flag {
	return []urfave.Flag{
		repeatedFlag{&urfave.StringFlag{Name: "price", Usage: "price of a model per million tokens, `MODEL=IN:OUT[:CACHED]` (repeatable)"}},
		&urfave.StringFlag{Name: "prices", Usage: `prices ` + "`FILE`" + ` (JSON: {"currency": "USD", "models": {"MODEL": {"input": 0.55, "output": 2.19, "cached": 0.14}}})`},
		&urfave.StringFlag{Name: "currency", Usage: "currency `LABEL` shown with costs (overrides the prices file's)"},
	}
}

func priceOptionsFrom(c *urfave.Context) priceOptions {
	o := priceOptions{File: c.String("prices"), Currency: c.String("currency")}
	if l, ok := c.Generic("price").(*stringList); ok {
		o.Prices = *l
	}
	return o
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
	return ps, nil
}
