package worker

import (
	"context"
	"sync"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

const (
	// maxGroup bounds how many outcomes one transaction records.
	maxGroup = 1024
	// defaultLinger is how long the writer waits for more outcomes after
	// the first of a group while calls are still in flight: the answers
	// to calls sent together come back together, a few milliseconds
	// apart, and a commit (with its fsync and the pages it rewrites)
	// costs about as much CPU for one outcome as for dozens.
	defaultLinger = 10 * time.Millisecond
)

// writer is the run's only writer of outcomes. It records in one
// transaction whatever queued up while the previous commit ran, and what
// comes within its linger of a group's first outcome while calls are in
// flight, up to lingerMost outcomes: under load the groups grow by
// themselves, answers that come back together are committed together,
// and an outcome that no call in flight could bring company to is
// committed at once, so the end of a run waits for no timer. While it
// lingers the writer sleeps: the outcomes that come meanwhile wake it
// only when the group is full or no call is left.
type writer struct {
	q  jobs.Queue
	in chan jobs.Outcome
	// wake cuts a linger short (a full group, no call left, close).
	wake chan struct{}
	// linger is how long a group waits for more outcomes (defaultLinger),
	// lingerMost the group size past which it waits no more; calling says
	// whether calls are in flight.
	linger     time.Duration
	lingerMost int
	calling    func() bool
	committed  func(n int)
	failed     func(error)
	wg         sync.WaitGroup
	// Commits and Recorded count transactions and outcomes, for tests and
	// benchmarks. Only the writer goroutine touches them until done.
	commits, recorded int
}

// newWriter starts the writer. buffer is how many outcomes may wait for
// it; a group stops waiting for more at a quarter of it. calling says
// whether calls are in flight: their outcomes are worth waiting for.
func newWriter(q jobs.Queue, buffer int, calling func() bool, committed func(int), failed func(error)) *writer {
	w := newIdleWriter(q, buffer, calling, committed, failed)
	w.start()
	return w
}

// newIdleWriter is newWriter not started yet, for a test to set linger.
func newIdleWriter(q jobs.Queue, buffer int, calling func() bool, committed func(int), failed func(error)) *writer {
	return &writer{q: q, in: make(chan jobs.Outcome, buffer), wake: make(chan struct{}, 1), linger: defaultLinger,
		lingerMost: max(1, min(maxGroup, buffer/4)), calling: calling, committed: committed, failed: failed}
}

func (w *writer) start() {
	w.wg.Add(1)
	go w.loop()
}

// submit queues an outcome, and wakes a lingering writer when the group is
// full or no call is left in flight (the caller has ended its own).
func (w *writer) submit(o jobs.Outcome) {
	w.in <- o
	if w.full() || !w.calling() {
		w.poke()
	}
}

// full says whether what is queued fills a group with the outcome a
// lingering writer holds.
func (w *writer) full() bool { return len(w.in)+1 >= w.lingerMost }

func (w *writer) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// close records what is queued and waits for the writer to finish.
func (w *writer) close() {
	close(w.in)
	w.poke()
	w.wg.Wait()
}

func (w *writer) loop() {
	defer w.wg.Done()
	// Outcomes are recorded even after the run's context is cancelled: a
	// hard stop still keeps every answer that arrived.
	ctx := context.Background()
	batch := make([]jobs.Outcome, 0, maxGroup)
	t := time.NewTimer(time.Hour)
	t.Stop()
	broken := false
	for o := range w.in {
		batch = w.gather(append(batch[:0], o), t)
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
		clear(batch) // let the results go before the next group comes
		w.committed(len(batch))
	}
}

// gather adds to batch, which holds a group's first outcome, what is
// queued and, while calls are in flight and the group is under
// lingerMost, what comes within w.linger; t is the writer's timer,
// stopped. While it waits the outcomes stay queued, so that submit can
// tell a full group.
func (w *writer) gather(batch []jobs.Outcome, t *time.Timer) []jobs.Outcome {
	select {
	case <-w.wake: // a poke for the group before
	default:
	}
	if w.full() || !w.calling() {
		return w.drain(batch)
	}
	t.Reset(w.linger)
	select {
	case <-t.C:
	case <-w.wake:
		t.Stop()
	}
	return w.drain(batch)
}

// drain adds what is queued to batch, up to maxGroup; it leaves a closed
// channel for the loop to see.
func (w *writer) drain(batch []jobs.Outcome) []jobs.Outcome {
	for len(batch) < maxGroup {
		select {
		case o, ok := <-w.in:
			if !ok {
				return batch
			}
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}
