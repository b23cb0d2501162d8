package worker

import (
	"context"
	"sync"

	"github.com/llmbatch/llmbatch/jobs"
)

// maxGroup bounds how many outcomes one transaction records.
const maxGroup = 1024

// writer is the run's only writer of outcomes. It records whatever has
// queued up while the previous commit ran, in one transaction: under load
// the groups grow by themselves, and an idle run commits at once, so no
// outcome waits for a timer.
type writer struct {
	q         jobs.Queue
	in        chan jobs.Outcome
	committed func(n int)
	failed    func(error)
	wg        sync.WaitGroup
	// Commits and Recorded count transactions and outcomes, for tests and
	// benchmarks. Only the writer goroutine touches them until done.
	commits, recorded int
}

func newWriter(q jobs.Queue, buffer int, committed func(int), failed func(error)) *writer {
	w := &writer{q: q, in: make(chan jobs.Outcome, buffer), committed: committed, failed: failed}
	w.wg.Add(1)
	go w.loop()
	return w
}

func (w *writer) submit(o jobs.Outcome) { w.in <- o }

// close records what is queued and waits for the writer to finish.
func (w *writer) close() {
	close(w.in)
	w.wg.Wait()
}

func (w *writer) loop() {
	defer w.wg.Done()
	// Outcomes are recorded even after the run's context is cancelled: a
	// hard stop still keeps every answer that arrived.
	ctx := context.Background()
	batch := make([]jobs.Outcome, 0, maxGroup)
	broken := false
	for o := range w.in {
		batch = append(batch[:0], o)
	drain:
		for len(batch) < maxGroup {
			select {
			case o, ok := <-w.in:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		if !broken {
			if err := w.q.Record(ctx, batch); err != nil {
				// The requests stay running; the next run recovers them and
				// asks again. Nothing committed is lost.
				broken = true
				w.failed(err)
			} else {
				w.commits++
				w.recorded += len(batch)
			}
		}
		w.committed(len(batch))
	}
}
