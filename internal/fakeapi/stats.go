package fakeapi

import (
	"sync"
	"sync/atomic"
)

// Stats is a snapshot of what a Server did since it started or was Reset.
type Stats struct {
	// Calls counts every request the handler saw, errors and faults included.
	Calls int64
	// Status counts the responses by the status code written.
	Status map[int]int64
	// Resets counts connections closed without an answer (Fault.Reset).
	Resets int64
	// Cut counts answers that were started but not finished: streams that
	// ended without [DONE] (CutAfterChunks, KeepAliveOnly, the client going
	// away mid-stream) and plain bodies cut by CutAfterChunks.
	Cut int64
	// Canceled counts requests whose client went away (or the server closed)
	// before anything was written: during Latency or Delay, or while a plain
	// request with KeepAliveOnly hung.
	Canceled int64
	// Malformed counts 200 answers sent with BadJSON.
	Malformed int64
	// Served counts complete 2xx answers (streams: [DONE] written).
	Served int64
	// Usage sums the token usage of the served answers.
	Usage Usage
	// ServedByKey counts served answers per Call.CustomKey.
	ServedByKey map[string]int64
	// InFlight is the number of requests being handled now, and MaxInFlight
	// the most handled at once.
	InFlight, MaxInFlight int64

	// FilesUploaded counts the files uploaded (POST files), and
	// BatchesCreated the batches created (POST batches), those that fail
	// validation included.
	FilesUploaded, BatchesCreated int64
	// BatchLines counts the lines batches answered: BatchLinesOK those
	// answered 2xx (in an output file; they also count in Served, Usage
	// and ServedByKey, as online answers do) and BatchLinesFailed those
	// answered otherwise (in an error file). Lines a batch never answered
	// (expired, cancelled, in a batch that failed validation) are not
	// counted.
	BatchLines, BatchLinesOK, BatchLinesFailed int64

	batchAnswers map[string]int
}

// BatchAnswers returns how many times batches answered each custom_id,
// in an output or an error file. A line answered twice (a resubmission of
// a line already answered) shows as a count above 1.
func (st Stats) BatchAnswers() map[string]int {
	out := make(map[string]int, len(st.batchAnswers))
	for k, n := range st.batchAnswers {
		out[k] = n
	}
	return out
}

// BatchDuplicates lists the custom_ids batches answered more than once.
func (st Stats) BatchDuplicates() []string {
	var ids []string
	for id, n := range st.batchAnswers {
		if n > 1 {
			ids = append(ids, id)
		}
	}
	return ids
}

// Usage is a sum of token usage.
type Usage struct {
	PromptTokens, CompletionTokens, ReasoningTokens, TotalTokens int64
}

// DuplicateKeys lists the keys served more than once.
func (st Stats) DuplicateKeys() []string {
	var keys []string
	for k, n := range st.ServedByKey {
		if n > 1 {
			keys = append(keys, k)
		}
	}
	return keys
}

// counters are the live, lock-free form of Stats: the server is hammered at
// tens of thousands of requests per second in benchmarks.
type counters struct {
	calls, resets, cut, canceled, malformed, served     atomic.Int64
	inFlight, maxInFlight                               atomic.Int64
	prompt, completion, reasoning, total                atomic.Int64
	status                                              [600]atomic.Int64
	byKey                                               sync.Map // string -> *atomic.Int64
	filesUploaded, batchesCreated, batchOK, batchFailed atomic.Int64
	batchAnswers                                        sync.Map // custom_id -> *atomic.Int64
}

func (c *counters) begin() {
	c.calls.Add(1)
	v := c.inFlight.Add(1)
	for {
		m := c.maxInFlight.Load()
		if v <= m || c.maxInFlight.CompareAndSwap(m, v) {
			return
		}
	}
}

func (c *counters) end() { c.inFlight.Add(-1) }

func (c *counters) wrote(status int) {
	if status >= 0 && status < len(c.status) {
		c.status[status].Add(1)
	}
}

func (c *counters) serve(key string, u Usage) {
	c.served.Add(1)
	c.prompt.Add(u.PromptTokens)
	c.completion.Add(u.CompletionTokens)
	c.reasoning.Add(u.ReasoningTokens)
	c.total.Add(u.TotalTokens)
	v, ok := c.byKey.Load(key)
	if !ok {
		v, _ = c.byKey.LoadOrStore(key, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// batchLine counts a line a batch answered, 2xx (ok) or not.
func (c *counters) batchLine(customID string, ok bool) {
	if ok {
		c.batchOK.Add(1)
	} else {
		c.batchFailed.Add(1)
	}
	v, found := c.batchAnswers.Load(customID)
	if !found {
		v, _ = c.batchAnswers.LoadOrStore(customID, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

func (c *counters) snapshot() Stats {
	st := Stats{
		Calls: c.calls.Load(), Resets: c.resets.Load(), Cut: c.cut.Load(),
		Canceled: c.canceled.Load(), Malformed: c.malformed.Load(), Served: c.served.Load(),
		InFlight: c.inFlight.Load(), MaxInFlight: c.maxInFlight.Load(),
		Usage: Usage{
			PromptTokens: c.prompt.Load(), CompletionTokens: c.completion.Load(),
			ReasoningTokens: c.reasoning.Load(), TotalTokens: c.total.Load(),
		},
		Status:      map[int]int64{},
		ServedByKey: map[string]int64{},
	}
	for code := range c.status {
		if n := c.status[code].Load(); n != 0 {
			st.Status[code] = n
		}
	}
	c.byKey.Range(func(k, v any) bool {
		st.ServedByKey[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	st.FilesUploaded, st.BatchesCreated = c.filesUploaded.Load(), c.batchesCreated.Load()
	st.BatchLinesOK, st.BatchLinesFailed = c.batchOK.Load(), c.batchFailed.Load()
	st.BatchLines = st.BatchLinesOK + st.BatchLinesFailed
	st.batchAnswers = map[string]int{}
	c.batchAnswers.Range(func(k, v any) bool {
		st.batchAnswers[k.(string)] = int(v.(*atomic.Int64).Load())
		return true
	})
	return st
}

func (c *counters) reset() {
	for _, v := range []*atomic.Int64{
		&c.calls, &c.resets, &c.cut, &c.canceled, &c.malformed, &c.served,
		&c.prompt, &c.completion, &c.reasoning, &c.total,
		&c.filesUploaded, &c.batchesCreated, &c.batchOK, &c.batchFailed,
	} {
		v.Store(0)
	}
	c.maxInFlight.Store(c.inFlight.Load())
	for i := range c.status {
		c.status[i].Store(0)
	}
	c.byKey.Clear()
	c.batchAnswers.Clear()
}
