package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// timedQueue wraps a run's queue and adds up the time spent in each method,
// to show where a run's wall time goes.
type timedQueue struct {
	jobs.Queue
	claims, records, waits          atomic.Int64
	claimTime, recordTime, waitTime atomic.Int64
}

func (q *timedQueue) Claim(ctx context.Context, jobID int64, n int, now time.Time) ([]jobs.Request, error) {
	defer q.time(&q.claims, &q.claimTime, time.Now())
	return q.Queue.Claim(ctx, jobID, n, now)
}

func (q *timedQueue) Record(ctx context.Context, outcomes []jobs.Outcome) error {
	defer q.time(&q.records, &q.recordTime, time.Now())
	return q.Queue.Record(ctx, outcomes)
}

func (q *timedQueue) Waiting(ctx context.Context, jobID int64) (int, time.Time, error) {
	defer q.time(&q.waits, &q.waitTime, time.Now())
	return q.Queue.Waiting(ctx, jobID)
}

func (q *timedQueue) time(n, total *atomic.Int64, start time.Time) {
	n.Add(1)
	total.Add(int64(time.Since(start)))
}

func (q *timedQueue) String() string {
	avg := func(n, total *atomic.Int64) string {
		d := time.Duration(total.Load())
		return fmt.Sprintf("%d calls, %s (%s each)", n.Load(), d.Round(time.Millisecond),
			(d / time.Duration(max(1, n.Load()))).Round(time.Microsecond))
	}
	return fmt.Sprintf("Claim %s; Record %s; Waiting %s", avg(&q.claims, &q.claimTime),
		avg(&q.records, &q.recordTime), avg(&q.waits, &q.waitTime))
}
