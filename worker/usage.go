package worker

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/llmbatch/llmbatch/jobs"
)

// maxTokenCount bounds the token counts we believe. No call comes near it;
// a larger count is garbage that would swamp a job's totals, its cost and
// its budget, so the usage that carries it is recorded as unknown.
const maxTokenCount = 1 << 40

// usage is a response's usage as decodeResponse reads it. The answer is
// kept whatever usage holds; when a count we read is not a whole number
// from 0 to maxTokenCount (a string, a fraction, a negative, an absurd
// figure), or usage or one of its details is not an object, the usage is
// unknown rather than partly made up.
type usage struct {
	bad                     bool              // not an object
	PromptTokens            count             `json:"prompt_tokens"`
	CompletionTokens        count             `json:"completion_tokens"`
	TotalTokens             count             `json:"total_tokens"`
	PromptCacheHitTokens    count             `json:"prompt_cache_hit_tokens"`
	CompletionTokensDetails completionDetails `json:"completion_tokens_details"`
	PromptTokensDetails     promptDetails     `json:"prompt_tokens_details"`
}

func (u *usage) UnmarshalJSON(b []byte) error {
	type plain usage
	if b[0] != 'n' {
		u.bad = !decodeObject(b, (*plain)(u))
	}
	return nil
}

// completionDetails and promptDetails are usage's details objects, for the
// one count we record from each.
type completionDetails struct {
	bad             bool
	ReasoningTokens count `json:"reasoning_tokens"`
}

func (d *completionDetails) UnmarshalJSON(b []byte) error {
	type plain completionDetails
	if b[0] != 'n' {
		d.bad = !decodeObject(b, (*plain)(d))
	}
	return nil
}

type promptDetails struct {
	bad          bool
	CachedTokens count `json:"cached_tokens"`
}

func (d *promptDetails) UnmarshalJSON(b []byte) error {
	type plain promptDetails
	if b[0] != 'n' {
		d.bad = !decodeObject(b, (*plain)(d))
	}
	return nil
}

// decodeObject decodes b into v when it is an object and reports false for
// anything else. The fields of v read leniently, so decoding an object
// cannot fail. Null, which leaves a value as it was, is the caller's.
func decodeObject(b []byte, v any) bool {
	return b[0] == '{' && json.Unmarshal(b, v) == nil
}

// count is one token count. Null leaves it as it was, as encoding/json
// leaves an integer; a later value of a repeated key replaces it.
type count struct {
	n   int64
	bad bool
}

func (c *count) UnmarshalJSON(b []byte) error {
	if b[0] != 'n' {
		n, ok := readCount(b)
		c.n, c.bad = n, !ok
	}
	return nil
}

// readCount reads a token count: a JSON number that is a whole number from
// 0 to maxTokenCount, however it is spelled (20, 20.0, 2e1, 2000e-2), as
// float64 reads it. Some servers write every number as a float.
func readCount(b []byte) (int64, bool) {
	if b[0] != '-' && !isDigit(b[0]) {
		return 0, false // a string, a boolean, an object or an array
	}
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		return n, n >= 0 && n <= maxTokenCount
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f != math.Trunc(f) || f < 0 || f > maxTokenCount {
		return 0, false
	}
	return int64(f), true
}

// read returns the usage to record: unknown if anything we read was
// unreadable.
func (u *usage) read() jobs.Usage {
	counts := []count{u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.PromptCacheHitTokens,
		u.CompletionTokensDetails.ReasoningTokens, u.PromptTokensDetails.CachedTokens}
	if u.bad || u.CompletionTokensDetails.bad || u.PromptTokensDetails.bad {
		return jobs.Usage{}
	}
	for _, c := range counts {
		if c.bad {
			return jobs.Usage{}
		}
	}
	r := jobs.Usage{Known: true, PromptTokens: u.PromptTokens.n, CompletionTokens: u.CompletionTokens.n,
		TotalTokens: u.TotalTokens.n, CachedTokens: u.PromptCacheHitTokens.n,
		ReasoningTokens: u.CompletionTokensDetails.ReasoningTokens.n}
	if c := u.PromptTokensDetails.CachedTokens.n; c > 0 {
		r.CachedTokens = c
	}
	return r.Totalled()
}
