package jobs

import (
	"errors"
	"io"
	"sync"
)

// AheadReader calls a source's Next on a goroutine of its own and hands
// the requests over in batches, so that reading and validating the file
// runs beside a store's inserts. Only that goroutine touches the source
// until Batches is closed.
type AheadReader struct {
	batches chan []Request
	free    chan []Request
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	// err is what Next returned other than io.EOF; read it after batches
	// is closed.
	err error
}

// ReadAhead starts reading src in batches of size, up to depth batches
// ahead of the consumer.
func ReadAhead(src RequestSource, size, depth int) *AheadReader {
	rd := &AheadReader{batches: make(chan []Request, depth), free: make(chan []Request, depth+2), done: make(chan struct{})}
	rd.wg.Add(1)
	go func() {
		defer rd.wg.Done()
		defer close(rd.batches)
		rd.err = rd.read(src, size)
	}()
	return rd
}

func (rd *AheadReader) read(src RequestSource, size int) error {
	batch := rd.batch(size)
	for {
		r, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		if batch = append(batch, r); len(batch) == size {
			if !rd.send(batch) {
				return nil
			}
			batch = rd.batch(size)
		}
	}
	if len(batch) > 0 {
		rd.send(batch)
	}
	return nil
}

// batch returns an empty batch, one the consumer is done with if it can.
func (rd *AheadReader) batch(size int) []Request {
	select {
	case b := <-rd.free:
		return b[:0]
	default:
		return make([]Request, 0, size)
	}
}

func (rd *AheadReader) send(batch []Request) bool {
	select {
	case rd.batches <- batch:
		return true
	case <-rd.done:
		return false
	}
}

// Recycle hands a stored batch back for reuse.
func (rd *AheadReader) Recycle(batch []Request) {
	clear(batch)
	select {
	case rd.free <- batch:
	default:
	}
}

// Stop ends the reading goroutine, if it still runs, and waits for it.
func (rd *AheadReader) Stop() {
	rd.once.Do(func() { close(rd.done) })
	for range rd.batches {
	}
	rd.wg.Wait()
}

// Batches yields the batches read, and is closed at the end of the source
// (or after Stop).
func (rd *AheadReader) Batches() <-chan []Request { return rd.batches }

// Err is what the source's Next returned other than io.EOF; read it once
// Batches is closed.
func (rd *AheadReader) Err() error { return rd.err }
