package worker

import (
	"math"
	"strconv"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// DefaultMaxTokens is the completion size a token estimate assumes for a
// request that sets neither max_tokens nor max_completion_tokens.
const DefaultMaxTokens = 1024

// burstWindow is the time of a bucket's rate that a request costing more
// waits to have saved up. A bucket saves up at most twice that (and at
// least two requests): a dispatcher that wakes a few milliseconds late then
// loses no capacity, and a provider that enforces its per-minute limit over
// short periods sees no burst.
const burstWindow = 10 * time.Millisecond

// bucket is a token bucket. A request may go once the balance covers its
// cost, or covers burstWindow's worth of tokens when the cost is more than
// that (so that no request waits for ever); its cost is then charged,
// which may leave the balance negative for the next request to wait out.
// The clock is passed in, so tests control time.
type bucket struct {
	rate    float64 // tokens per second
	need    float64 // the most a request waits to have saved up
	burst   float64 // the most the balance refills to: twice need
	balance float64
	last    time.Time
}

// newBucket returns a full bucket of perMinute tokens a minute.
func newBucket(perMinute float64, now time.Time) *bucket {
	b := &bucket{last: now}
	b.setRate(perMinute / 60)
	b.balance = b.burst
	return b
}

// setRate changes the rate (tokens per second), keeping the balance within
// the new burst.
func (b *bucket) setRate(perSecond float64) {
	b.rate = perSecond
	b.need = max(1, math.Ceil(perSecond*burstWindow.Seconds()))
	b.burst = 2 * b.need
	b.balance = min(b.balance, b.burst)
}

func (b *bucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		if b.balance < b.burst {
			b.balance = min(b.burst, b.balance+dt*b.rate)
		}
		b.last = now
	}
}

// wait returns how long until a request of cost may go; 0 means now.
func (b *bucket) wait(now time.Time, cost float64) time.Duration {
	b.refill(now)
	need := min(cost, b.need)
	if b.balance >= need {
		return 0
	}
	return time.Duration(math.Ceil((need - b.balance) / b.rate * float64(time.Second)))
}

// take charges cost.
func (b *bucket) take(now time.Time, cost float64) {
	b.refill(now)
	b.balance -= cost
}

// give credits n tokens (a negative n charges them): the difference
// between what a request was charged and what it used. A refund may lift
// the balance above the burst: the tokens were charged and never used, so
// spending them again keeps the tokens really used within the limit.
func (b *bucket) give(now time.Time, n float64) {
	b.refill(now)
	b.balance += n
}

// EstimateTokens estimates what a request will count against a
// tokens-per-minute limit before it is sent: the sum of EstimateParts.
func EstimateTokens(body []byte) int64 {
	prompt, completion := EstimateParts(body)
	return prompt + completion
}

// EstimateParts estimates a request's tokens before it is sent, in two
// parts: prompt, the JSON text of its messages (chat) or prompt
// (completions) at four bytes a token, rounded up; and completion, the
// worst case max_tokens (else max_completion_tokens, else
// DefaultMaxTokens) times n. An embeddings body (one with "input" and
// neither "messages" nor "prompt", as the import tells them apart) has its
// input as prompt and no completion. The JSON text overcounts a little
// (keys, quotes, escapes), which errs on the safe side; a run reconciles
// the estimate with the usage reported. A body that is not a JSON object
// counts whole as prompt.
func EstimateParts(body []byte) (prompt, completion int64) {
	ms, err := jobs.Members(body)
	if err != nil {
		return (int64(len(body)) + 3) / 4, DefaultMaxTokens
	}
	var text, input, maxTokens, maxCompletion int64
	n := int64(1)
	completions := false // a "messages" or "prompt": not an embeddings body
	for _, m := range ms {
		v := body[m.ValueStart:m.End]
		switch m.Key {
		case "messages", "prompt":
			text += int64(len(v))
			completions = true
		case "input":
			input = int64(len(v))
		case "max_tokens":
			maxTokens = positiveInt(v)
		case "max_completion_tokens":
			maxCompletion = positiveInt(v)
		case "n":
			n = max(1, positiveInt(v))
		}
	}
	if !completions && input > 0 {
		return (input + 3) / 4, 0
	}
	completion = int64(DefaultMaxTokens)
	if maxTokens > 0 {
		completion = maxTokens
	} else if maxCompletion > 0 {
		completion = maxCompletion
	}
	return (text + 3) / 4, completion * n
}

// positiveInt reads a JSON number as a positive integer, or returns 0.
func positiveInt(v []byte) int64 {
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || !(f >= 1) || f > 1e12 {
		return 0
	}
	return int64(f)
}
