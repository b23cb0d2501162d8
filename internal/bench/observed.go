package main

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
)

// observed is a fake server that also notes when its first request arrived
// and counts the requests it finished, cheaply enough to poll (the fake's
// own Stats copies a map of every key served).
type observed struct {
	fake  *fakeapi.Server
	ts    *httptest.Server
	first atomic.Int64 // unix nanoseconds of the first request, 0 before
	last  atomic.Int64 // unix nanoseconds of the last request's end
	done  atomic.Int64
}

func newObserved(cfg fakeapi.Config) *observed {
	o := &observed{fake: fakeapi.New(cfg)}
	o.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.first.CompareAndSwap(0, time.Now().UnixNano())
		o.fake.ServeHTTP(w, r)
		o.last.Store(time.Now().UnixNano())
		o.done.Add(1)
	}))
	o.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	o.ts.Start()
	return o
}

// URL is the base URL of the API.
func (o *observed) URL() string { return o.ts.URL + "/v1" }

// reset forgets the first request, for the next child.
func (o *observed) reset() { o.first.Store(0) }

// firstAt returns when the first request arrived, or the zero time.
func (o *observed) firstAt() time.Time {
	if ns := o.first.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// span is the time from start to the first request and to the end of the
// last, 0 for none.
func (o *observed) span(start time.Time) (first, last time.Duration) {
	if ns := o.first.Load(); ns != 0 {
		first = time.Unix(0, ns).Sub(start)
	}
	if ns := o.last.Load(); ns != 0 {
		last = time.Unix(0, ns).Sub(start)
	}
	return first, last
}

func (o *observed) close() {
	o.ts.CloseClientConnections()
	o.ts.Close()
	o.fake.Close()
}
