package cli

// What a job remembers of how it is sent, and how a run resolves it with
// its flags and environment: flag > the job's stored value > environment >
// default, for the base URL; the job's stored shape flags (--stream) when
// the run does not give them; the stored prices under the ones given.

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/llmbatch/llmbatch/jobs"
	"github.com/llmbatch/llmbatch/output"
)

// sending is how a run sends its job's requests, once resolved.
type sending struct {
	BaseURL string
	// BatchBaseURL is the Batch API's base URL: --batch-base-url, else the
	// job's stored one, else BaseURL.
	BatchBaseURL string
	// MaxTokens and MaxCost are the run's budgets: given, else stored.
	MaxTokens int64
	MaxCost   float64
	// URLChanged says --base-url named another URL than the job's stored
	// one (which the run then replaced).
	URLChanged bool
	Stream     bool
	Prices     jobs.Prices
}

// newSettings is what a job the run creates stores: the base URL it
// resolves to, whether it streams, the prices and the budgets given.
func (o runOptions) newSettings() jobs.Settings {
	set := jobs.Settings{BaseURL: firstOf(o.BaseURL, o.BaseURLEnv, DefaultBaseURL),
		Shape: map[string][]string{"stream": {strconv.FormatBool(o.Stream)}}}
	if o.PricesGiven {
		p := o.Prices
		set.Prices = &p
	}
	set.MaxTokens, set.MaxCost = o.MaxTokens, o.MaxCost
	return set
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// resolveSending resolves how the run sends job and stores what changed in
// the job's settings: a --base-url other than the stored one (said on
// stderr, and the waits the old URL caused are cleared), a first base URL
// for a job that had none, and prices given to the run.
func resolveSending(ctx context.Context, st jobs.Store, job *jobs.Job, o runOptions, stderr io.Writer) (sending, error) {
	set := job.Settings
	s := sending{BaseURL: firstOf(o.BaseURL, set.BaseURL, o.BaseURLEnv, DefaultBaseURL)}
	s.URLChanged = o.BaseURL != "" && set.BaseURL != "" && o.BaseURL != set.BaseURL
	if s.URLChanged && !o.StandIn {
		fmt.Fprintf(stderr, "llmbatch: job %s: base URL changed: %s → %s (stored with the job; later runs use it)\n",
			job.Name, set.BaseURL, s.BaseURL)
	}
	changed := set.BaseURL != s.BaseURL
	set.BaseURL = s.BaseURL
	if b := o.Batch.BaseURL; b != "" && b != set.BatchBaseURL {
		set.BatchBaseURL, changed = b, true
	}
	s.BatchBaseURL = firstOf(set.BatchBaseURL, s.BaseURL)
	s.Stream = o.Stream
	if v, ok := set.Shape["stream"]; !ok {
		// Made by import (or before the job stored its flags): this first
		// run decides, for the runs after it.
		set.Shape = maps.Clone(set.Shape)
		if set.Shape == nil { // a job stored before its flags were: its model is known
			set.Shape = map[string][]string{}
			if job.DefaultModel != "" {
				set.Shape["model"] = []string{job.DefaultModel}
			}
		}
		set.Shape["stream"], changed = []string{strconv.FormatBool(o.Stream)}, true
	} else if o.Shape["stream"] == nil {
		s.Stream = slices.Equal(v, []string{"true"})
	}
	s.Prices = mergePrices(set.Prices, o.Prices, o.PricesGiven)
	if o.PricesGiven {
		p := s.Prices
		set.Prices, changed = &p, true
	}
	s.MaxTokens, s.MaxCost = set.MaxTokens, set.MaxCost
	if o.MaxTokensGiven {
		s.MaxTokens, set.MaxTokens, changed = o.MaxTokens, o.MaxTokens, true
	}
	if o.MaxCostGiven {
		s.MaxCost, set.MaxCost, changed = o.MaxCost, o.MaxCost, true
	}
	if !changed {
		return s, nil
	}
	if err := st.SaveSettings(ctx, job.ID, set); err != nil {
		return s, cannotWrite(o.importOptions, *job, err)
	}
	job.Settings = set
	if s.URLChanged {
		if n, err := st.ClearWaits(ctx, job.ID); err != nil {
			return s, cannotWrite(o.importOptions, *job, err)
		} else if n > 0 && !o.StandIn {
			fmt.Fprintf(stderr, "llmbatch: job %s: %s that waited on a backoff from the old URL can be sent now\n",
				job.Name, output.Plural(n, "request"))
		}
	}
	return s, nil
}

// mergePrices is the stored prices with the given ones over them (a
// model's price replaced, the currency label when given).
func mergePrices(stored *jobs.Prices, given jobs.Prices, isGiven bool) jobs.Prices {
	var out jobs.Prices
	if stored != nil {
		out.Currency = stored.Currency
		out.ByModel = maps.Clone(stored.ByModel)
		out.BatchDiscount = stored.BatchDiscount
	}
	if !isGiven {
		return out
	}
	for m, p := range given.ByModel {
		out.Set(m, p)
	}
	if given.Currency != "" {
		out.Currency = given.Currency
	}
	if given.BatchDiscount != nil {
		out.BatchDiscount = given.BatchDiscount
	}
	return out
}

// warnUnusedPrices says which models given a price no request of the job
// asks for: a typo would otherwise leave the cost unknown, silently.
func warnUnusedPrices(ctx context.Context, st jobs.Store, job jobs.Job, given jobs.Prices, stderr io.Writer) error {
	if len(given.ByModel) == 0 {
		return nil
	}
	models, err := st.Models(ctx, job.ID)
	if err != nil {
		return err
	}
	for _, m := range given.PricedModels() {
		if !slices.Contains(models, m) {
			fmt.Fprintf(stderr, "llmbatch: warning: --price names model %q, which no request of job %s asks for (it asks for %s)\n",
				m, job.Name, strings.Join(quoteAll(models), ", "))
		}
	}
	return nil
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// jobPrices is what status and report price a job with: the prices the
// job stored, with those of the command line (already loaded; empty when
// none was given) over them.
func jobPrices(job jobs.Job, given jobs.Prices) jobs.Prices {
	return mergePrices(job.Settings.Prices, given, len(given.ByModel) > 0 || given.Currency != "" || given.BatchDiscount != nil)
}
