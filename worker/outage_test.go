package worker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmbatch/llmbatch/internal/fakeapi"
	"github.com/llmbatch/llmbatch/internal/testclock"
	"github.com/llmbatch/llmbatch/jobs"
)

// nextID is a new request id: the failures of different requests.
var lastID atomic.Int64

func nextID() int64 { return lastID.Add(1) }

var (
	refused = &CallError{Failure: jobs.Failure{Class: jobs.ClassNetwork, Message: `Post "http://127.0.0.1:1/v1/chat/completions": dial tcp 127.0.0.1:1: connect: connection refused`},
		NoConnection: true}
	unavailable = &CallError{Failure: jobs.Failure{Class: jobs.ClassServer, StatusCode: 503, Message: "busy"}}
	notFound    = &CallError{Failure: jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 404, Message: "no route"}}
	badRequest  = &CallError{Failure: jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400, Message: "bad", Body: []byte(`{"error":{"message":"bad"}}`)}}
	answered    = &jobs.Result{StatusCode: 200}
)

func TestOutagePausesAfterFailuresInARow(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	o := newOutage("http://127.0.0.1:1/v1", 16, true, clock.Now)
	for i := 1; i < outageAfter; i++ {
		if v := o.done(nextID(), 0, nil, refused, ""); !v.counts || v.hold {
			t.Fatalf("failure %d before the pause: %+v, want it to count", i, v)
		}
	}
	if _, d := o.admit(); d != 0 {
		t.Fatalf("paused after %d failures, want %d", outageAfter-1, outageAfter)
	}
	o.done(nextID(), 0, nil, refused, "") // the eighth in a row pauses
	var s jobs.RunState
	o.state(&s)
	if want := "127.0.0.1:1 unreachable (connection refused)"; s.Outage != want {
		t.Errorf("Outage = %q, want %q", s.Outage, want)
	}
	if v := o.done(nextID(), 0, nil, refused, ""); v.counts {
		t.Error("a failure while paused used an attempt")
	}
	if probe, d := o.admit(); probe != 0 || d != firstProbe {
		t.Fatalf("admit while paused = %v, %v; want no probe for %v", probe, d, firstProbe)
	}
	// The probes: the interval doubles on each failure, up to a minute.
	waits := []time.Duration{}
	for range 8 {
		clock.Advance(time.Hour)
		probe, d := o.admit()
		if probe == 0 || d != 0 {
			t.Fatalf("admit at probe time = %v, %v; want the probe", probe, d)
		}
		if _, d := o.admit(); d != waitForCall {
			t.Fatalf("a second request while the probe is out: wait %v, want %v", d, waitForCall)
		}
		if v := o.done(nextID(), probe, nil, unavailable, ""); v.counts {
			t.Fatal("a failed probe used an attempt")
		}
		_, d = o.admit()
		waits = append(waits, d)
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute, time.Minute}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("probe waits %v, want %v", waits, want)
		}
	}
	o.state(&s)
	if s.Outage != "127.0.0.1:1 answers 503 (server_error)" {
		t.Errorf("Outage after a 503 = %q", s.Outage)
	}
	clock.Advance(time.Hour)
	probe, _ := o.admit()
	o.done(nextID(), probe, answered, nil, "")
	if probe, d := o.admit(); probe != 0 || d != 0 {
		t.Fatalf("after a probe succeeded: %v, %v; want dispatch as usual", probe, d)
	}
	if err := o.gaveUp(); err != nil {
		t.Errorf("an endpoint that answered gave up: %v", err)
	}
}

func TestOutageScatteredFailuresDoNotPause(t *testing.T) {
	o := newOutage("https://api.example.com/v1", 32, true, time.Now)
	for i := range 10_000 {
		if i%5 == 0 {
			o.done(nextID(), 0, answered, nil, "")
			continue
		}
		if v := o.done(nextID(), 0, nil, unavailable, ""); !v.counts {
			t.Fatalf("call %d: a failure with successes in between did not count", i)
		}
	}
	// A permanent error is an answer: it ends a streak too.
	o.done(nextID(), 0, answered, nil, "")
	for range outageAfter - 1 {
		o.done(nextID(), 0, nil, refused, "")
	}
	o.done(nextID(), 0, nil, badRequest, "")
	o.done(nextID(), 0, nil, refused, "")
	if _, d := o.admit(); d != 0 {
		t.Errorf("paused though no %d failures came in a row", outageAfter)
	}
}

func TestOutageOneRequestFailingIsNoOutage(t *testing.T) {
	o := newOutage("https://api.example.com/v1", 16, true, time.Now)
	for i := range 20 {
		if v := o.done(7, 0, nil, unavailable, ""); !v.counts {
			t.Fatalf("failure %d of one request: %+v, want it to count (its attempts run out)", i+1, v)
		}
	}
	o.done(8, 0, nil, unavailable, "")
	if _, d := o.admit(); d != 0 {
		t.Error("paused for the failures of two requests")
	}
	o.done(9, 0, nil, unavailable, "")
	if _, d := o.admit(); d == 0 {
		t.Errorf("not paused after %d failures in a row of three requests", 22)
	}
}

func TestOutageNeverReached(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  *CallError
		want string
	}{
		{"Refused", refused, "connection refused"},
		{"NotFound", notFound, "HTTP 404: no route"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			o := newOutage("http://127.0.0.1:1/v1", 4, false, clock.Now)
			url := "http://127.0.0.1:1/v1/chat/completions"
			if v := o.done(nextID(), 0, nil, tt.err, url); !v.hold || v.counts {
				t.Fatalf("first failure: %+v, want it held back without an attempt", v)
			}
			for i := range unreachedProbes {
				if err := o.gaveUp(); err != nil {
					t.Fatalf("gave up after %d probes: %v", i, err)
				}
				clock.Advance(time.Minute)
				probe, _ := o.admit()
				if probe == 0 {
					t.Fatal("no probe")
				}
				o.done(nextID(), probe, nil, tt.err, url)
			}
			var ue *UnreachableError
			if err := o.gaveUp(); !errors.As(err, &ue) || ue.URL != url || ue.Reason != tt.want {
				t.Fatalf("gaveUp = %v, want unreachable %s: %s", err, url, tt.want)
			}
		})
	}
	t.Run("TLS", func(t *testing.T) {
		// A refused certificate is refused every time: no probe.
		o := newOutage("https://127.0.0.1:1/v1", 4, false, time.Now)
		tlsErr := &CallError{Failure: jobs.Failure{Class: jobs.ClassTLS, Message: "x509: certificate signed by unknown authority"}, NoConnection: true}
		if v := o.done(nextID(), 0, nil, tlsErr, "u"); !v.hold {
			t.Fatalf("%+v, want the request held back", v)
		}
		var ue *UnreachableError
		if err := o.gaveUp(); !errors.As(err, &ue) || ue.Reason != tlsErr.Message || ue.Class != jobs.ClassTLS {
			t.Errorf("gaveUp = %v, want unreachable at once, with the certificate's error", err)
		}
	})
	t.Run("TimeoutIsAnOutage", func(t *testing.T) {
		o := newOutage("https://127.0.0.1:1/v1", 4, false, time.Now)
		timeout := &CallError{Failure: jobs.Failure{Class: jobs.ClassTimeout, Message: "no complete answer within 2s"}}
		if v := o.done(nextID(), 0, nil, timeout, "u"); v.hold || !v.counts {
			t.Errorf("a timeout before any answer: %+v, want it to count (a server that accepts but is busy)", v)
		}
	})
	t.Run("ResetIsAnOutage", func(t *testing.T) {
		o := newOutage("http://127.0.0.1:1/v1", 4, false, time.Now)
		reset := &CallError{Failure: jobs.Failure{Class: jobs.ClassNetwork, Message: "read: connection reset by peer"}}
		if v := o.done(nextID(), 0, nil, reset, "u"); v.hold || !v.counts {
			t.Errorf("a reset on a connection made: %+v, want it to count", v)
		}
	})
	t.Run("PlainHTTPAnswerToTLSPort", func(t *testing.T) {
		// http:// to an HTTPS port: the web server's 400 is no API's
		// answer, and must not fail the requests.
		o := newOutage("http://127.0.0.1:8443/v1", 4, false, time.Now)
		e := &CallError{Failure: jobs.Failure{Class: jobs.ClassInvalidRequest, StatusCode: 400,
			Message: "Client sent an HTTP request to an HTTPS server.", Body: []byte("Client sent an HTTP request to an HTTPS server.\n")}}
		if v := o.done(nextID(), 0, nil, e, "u"); !v.hold || v.counts {
			t.Errorf("a 400 that is no JSON before any answer: %+v, want it held", v)
		}
		if v := o.done(nextID(), 0, nil, badRequest, "u"); v.hold {
			t.Errorf("an API's JSON 400 was held: %+v", v)
		}
	})
	t.Run("AnswerEndsIt", func(t *testing.T) {
		o := newOutage("http://127.0.0.1:1/v1", 4, false, time.Now)
		o.done(nextID(), 0, nil, notFound, "") // one request's own 404, say
		o.done(nextID(), 0, answered, nil, "")
		if v := o.done(nextID(), 0, nil, notFound, ""); v.hold || !v.counts {
			t.Errorf("a 404 after an answer: %+v, want it to count (and fail the request)", v)
		}
		if _, d := o.admit(); d != 0 {
			t.Error("still paused after an answer")
		}
	})
}

// TestRunnerPausesThroughOutage runs a job against a server that goes away
// in the middle and comes back: the run pauses instead of failing the
// requests, probes, and ends with every request answered, none having
// used more than two attempts.
func TestRunnerPausesThroughOutage(t *testing.T) {
	const n = 300
	st := mustOpenStore(t)
	jobID := mustImport(t, st, n)
	var calls atomic.Int64
	var fake *fakeapi.Server
	fake = fakeapi.Start(t, fakeapi.Config{Key: testKey, Latency: 5 * time.Millisecond,
		Script: func(c fakeapi.Call) fakeapi.Fault {
			if calls.Add(1) == 100 {
				fake.Down(2 * time.Second)
			}
			return fakeapi.Fault{}
		}})
	r := New(st, jobID, newTestClient(fake.URL(), ClientOptions{Conns: 8}),
		Options{Concurrency: 8, MaxAttempts: 3, Retry: fastRetry, BaseURL: fake.URL()})
	sawPause := make(chan string, 1)
	done := runAsync(context.Background(), r)
	var err error
poll:
	for {
		select {
		case err = <-done:
			break poll
		case <-time.After(5 * time.Millisecond):
			if s := r.State(); s.Outage != "" {
				select {
				case sawPause <- s.Outage:
				default:
				}
			}
		}
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	recs := records(t, st, jobID)
	if got := countStatus(recs); got[jobs.StatusSucceeded] != n {
		t.Fatalf("statuses %v, want all %d succeeded", got, n)
	}
	most := 0
	for _, rec := range recs {
		most = max(most, rec.Request.Attempts)
	}
	if most > 2 {
		t.Errorf("a request used %d attempts, want at most 2 (failures during the pause use none)", most)
	}
	select {
	case why := <-sawPause:
		if !strings.Contains(why, "unreachable") {
			t.Errorf("pause reason %q, want it to say the server is unreachable", why)
		}
	default:
		t.Error("the run never showed a pause")
	}
}

// TestRunnerStopsWhenNeverReached: a base URL nothing listens on stops the
// run within seconds with an *UnreachableError, and leaves every request
// pending with no attempt used.
func TestRunnerStopsWhenNeverReached(t *testing.T) {
	st := mustOpenStore(t)
	jobID := mustImport(t, st, 20)
	base := "http://127.0.0.1:1/v1"
	r := New(st, jobID, newTestClient(base, ClientOptions{Conns: 4}),
		Options{Concurrency: 4, MaxAttempts: 3, Retry: fastRetry, BaseURL: base})
	start := time.Now()
	err := mustReturn(t, runAsync(context.Background(), r), 20*time.Second)
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.URL != base+"/chat/completions" || !strings.Contains(ue.Reason, "refused") {
		t.Fatalf("Run = %v, want an *UnreachableError for %s/chat/completions (connection refused)", err, base)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("gave up after %v, want within seconds", d)
	}
	checkUntouched(t, records(t, st, jobID))
}

// TestClientTellsNoConnection: the client marks the failures where no
// connection was made (refused, unknown host), and not those on a
// connection made (a reset), which an outage gives. (An unknown host is a
// DNS error, told the same way; resolving one would reach the network.)
func TestClientTellsNoConnection(t *testing.T) {
	req := chatRequests(1)[0]
	for _, tc := range []struct {
		name string
		base string
		want bool
	}{
		{"Refused", "http://127.0.0.1:1/v1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newTestClient(tc.base, ClientOptions{}).Call(context.Background(), &req)
			var ce *CallError
			if !errors.As(err, &ce) || ce.NoConnection != tc.want {
				t.Errorf("Call = %v (NoConnection %v), want NoConnection %v", err, ce != nil && ce.NoConnection, tc.want)
			}
		})
	}
	t.Run("Reset", func(t *testing.T) {
		fake := fakeapi.Start(t, fakeapi.Config{Key: testKey, Script: func(fakeapi.Call) fakeapi.Fault { return fakeapi.Fault{Reset: true} }})
		_, err := newTestClient(fake.URL(), ClientOptions{}).Call(context.Background(), &req)
		var ce *CallError
		if !errors.As(err, &ce) || ce.NoConnection || ce.Class != jobs.ClassNetwork {
			t.Errorf("Call = %v, want a network error on a connection made", err)
		}
	})
}

func TestOutageAnswerEndsThePause(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	o := newOutage("https://api.example.com/v1", 8, true, clock.Now)
	for range outageAfter {
		o.done(nextID(), 0, nil, unavailable, "")
	}
	clock.Advance(time.Minute)
	probe, _ := o.admit()
	if probe == 0 {
		t.Fatal("no probe")
	}
	// The probe gets an answer, though not one the job can use (a 400):
	// the endpoint is there again, and dispatch goes on as usual.
	if v := o.done(nextID(), probe, nil, badRequest, ""); !v.counts {
		t.Errorf("a probe's 400: %+v, want it to count", v)
	}
	if p, d := o.admit(); p != 0 || d != 0 {
		t.Errorf("after a probe answered 400: probe %d, wait %v; want dispatch as usual", p, d)
	}
}

func TestOutageStaleProbe(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	o := newOutage("https://api.example.com/v1", 8, true, clock.Now)
	pause := func() {
		for range outageAfter {
			o.done(nextID(), 0, nil, unavailable, "")
		}
	}
	pause()
	clock.Advance(time.Minute)
	stale, _ := o.admit()
	o.done(nextID(), 0, answered, nil, "") // another call's answer ends the pause
	pause()                                // and a new one begins
	clock.Advance(time.Minute)
	if p, _ := o.admit(); p == 0 || p == stale {
		t.Fatalf("the new pause's probe = %d (the stale one %d): want a new probe", p, stale)
	}
	o.done(nextID(), stale, nil, unavailable, "") // the stale probe's failure
	if _, d := o.admit(); d != waitForCall {
		t.Errorf("the stale probe's end freed the new pause's probe: wait %v, want %v", d, waitForCall)
	}
}

// TestClientHTTPSToPlainHTTP: https:// to a server that speaks plain HTTP
// fails the TLS handshake: no request reached a server.
func TestClientHTTPSToPlainHTTP(t *testing.T) {
	fake := fakeapi.Start(t, fakeapi.Config{Key: testKey})
	base := strings.Replace(fake.URL(), "http://", "https://", 1)
	req := chatRequests(1)[0]
	_, err := newTestClient(base, ClientOptions{}).Call(context.Background(), &req)
	var ce *CallError
	if !errors.As(err, &ce) || !ce.NoConnection {
		t.Errorf("Call = %v, want a failure marked NoConnection", err)
	}
}
