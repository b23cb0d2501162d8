package jobs

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Settings is what a job remembers of how its requests are sent, stored
// when the job is created so that every later run sends them the same way.
// The API key is never part of it.
type Settings struct {
	// BaseURL is the API's base URL the job's requests go to; "" for a job
	// created before base URLs were stored (a run then stores its own).
	BaseURL string `json:"base_url,omitempty"`
	// BatchBaseURL is where the provider serves its Batch API (/files,
	// /batches) when not under BaseURL (run --batch-base-url): the job's
	// provider batches live there, so every later run looks there.
	BatchBaseURL string `json:"batch_base_url,omitempty"`
	// Shape holds the flags that shaped what is sent, by flag name without
	// dashes (model, stream, template, system, param, samples, id-field),
	// each with its values in the order given. A flag left at its default
	// is absent.
	Shape map[string][]string `json:"shape,omitempty"`
	// Prices are the prices given to the run or import that made the job
	// (--price, --prices, --currency); status and report use them when not
	// given prices of their own.
	Prices *Prices `json:"prices,omitempty"`
	// MaxTokens and MaxCost are the budgets the last run gave (--max-tokens,
	// --max-cost; 0 for none): a budget is the job's, over all its runs, so
	// a run that gives none keeps them.
	MaxTokens int64   `json:"max_tokens,omitempty"`
	MaxCost   float64 `json:"max_cost,omitempty"`
}

// ShapeFlags are the flags that shape what is sent, in the order a
// refusal names them.
var ShapeFlags = []string{"model", "stream", "template", "system", "param", "samples", "id-field", "endpoint", "input-format"}

// shapeDefaults are the values a shape flag has when it is not given: a
// flag given with its default is no change from a job that stored none.
var shapeDefaults = map[string]string{"stream": "false", "samples": "1", "endpoint": "chat"}

// ShapeDiff names each flag of given whose values differ from what s
// stored, as "--flag: stored → given", in ShapeFlags order. A flag absent
// from given is not compared: a resume that does not repeat a flag keeps
// the job's.
func (s Settings) ShapeDiff(given map[string][]string) []string {
	var out []string
	for _, name := range ShapeFlags {
		v, ok := given[name]
		if !ok {
			continue
		}
		old := s.Shape[name]
		if len(old) == 0 && len(v) == 1 && v[0] == shapeDefaults[name] && v[0] != "" {
			continue
		}
		if !slices.Equal(old, v) {
			out = append(out, fmt.Sprintf("--%s: %s → %s", name, flagValues(old), flagValues(v)))
		}
	}
	return out
}

// flagValues renders a flag's values for a message.
func flagValues(v []string) string {
	if len(v) == 0 {
		return "(not set)"
	}
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, " ")
}

// PricedModels lists the models s has prices for, in name order.
func (p Prices) PricedModels() []string {
	out := make([]string, 0, len(p.ByModel))
	for m := range p.ByModel {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// RunEnd says why a run of a job ended; the store keeps the last one with
// the job, so that status can say it.
type RunEnd string

const (
	// EndFinished: no request was left to send (some may have failed).
	EndFinished RunEnd = "finished"
	// EndBudget: --max-tokens or --max-cost was reached.
	EndBudget RunEnd = "budget"
	// EndFatal: the API refused the run (401, 402, 403).
	EndFatal RunEnd = "fatal"
	// EndUnreachable: the endpoint never answered (a configuration error).
	EndUnreachable RunEnd = "unreachable"
	// EndInterrupted: a signal stopped the run.
	EndInterrupted RunEnd = "interrupted"
	// EndCancelled: the job was cancelled while the run worked it.
	EndCancelled RunEnd = "cancelled"
	// EndDetached: run --mode batch --detach left the job's batches with
	// the provider, to be collected by a later run.
	EndDetached RunEnd = "detached"
	// EndError: anything else (a full disk, a lost lock).
	EndError RunEnd = "error"
	// EndKilled is never stored: status says it of a job whose lock is
	// held by a run that is gone without writing its end.
	EndKilled RunEnd = "killed"
)
