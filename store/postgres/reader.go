package postgres

import (
	"errors"
	"io"
	"sync"

	"github.com/llmbatch/llmbatch/jobs"
)

// reader calls a source's Next on a goroutine of its own and hands the
// requests over in batches, so that reading and validating the file runs
// beside the COPY. Only that goroutine touches the source until batches
// is closed.
type reader struct {
	batches chan []jobs.Request
	free    chan []jobs.Request
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	// err is what Next returned other than io.EOF; read it after batches
	// is closed.
	err error
}

func readAhead(src jobs.RequestSource, size int) *reader {
	rd := &reader{batches: make(chan []jobs.Request, 8), free: make(chan []jobs.Request, 10), done: make(chan struct{})}
	rd.wg.Add(1)
	go func() {
		defer rd.wg.Done()
		defer close(rd.batches)
		rd.err = rd.read(src, size)
	}()
	return rd
}

func (rd *reader) read(src jobs.RequestSource, size int) error {
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

// batch returns an empty batch, one the importer is done with if it can.
func (rd *reader) batch(size int) []jobs.Request {
	select {
	case b := <-rd.free:
		return b[:0]
	default:
		return make([]jobs.Request, 0, size)
	}
}

func (rd *reader) send(batch []jobs.Request) bool {
	select {
	case rd.batches <- batch:
		return true
	case <-rd.done:
		return false
	}
}

// recycle hands a stored batch back for reuse.
func (rd *reader) recycle(batch []jobs.Request) {
	clear(batch)
	select {
	case rd.free <- batch:
	default:
	}
}

// stop ends the reading goroutine, if it still runs, and waits for it.
func (rd *reader) stop() {
	rd.once.Do(func() { close(rd.done) })
	for range rd.batches {
	}
	rd.wg.Wait()
}
