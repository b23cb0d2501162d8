package worker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// An outage pauses the job, not its requests: when calls keep failing
// without an answer the job can use and nothing succeeds in between, the
// runner stops dispatching as a whole and one request at a time probes the
// endpoint, at a growing interval; a request that fails while the job is
// paused uses no attempt. An endpoint that has never answered this run
// (connection refused, an unknown host, a refused certificate, 404 on every
// call) is more likely a wrong --base-url than an outage: after a few
// probes within seconds the run stops with an *UnreachableError.
const (
	// outageAfter is how many failures in a row, with no success between
	// them, pause dispatch (at most; fewer at a small concurrency). Across
	// thousands of calls a second with a tenth of them failing at random,
	// eight in a row are rare, and a pause that a probe ends at once costs
	// one round trip.
	outageAfter = 8
	// outageRequests is how many different requests must be among those
	// failures: a request that fails on its own, again and again (a prompt
	// the server chokes on), is no outage, and must use its attempts.
	outageRequests = 3
	// firstProbe is the wait before the first probe of an outage; each
	// failed probe doubles it, up to maxProbeWait.
	firstProbe   = time.Second
	maxProbeWait = time.Minute
	// unreachedProbe is the first wait of an endpoint never reached, and
	// unreachedProbes how many probes fail before the run gives up on it.
	unreachedProbe  = 500 * time.Millisecond
	unreachedProbes = 3
)

// UnreachableError ends a run whose endpoint never answered: every call
// failed before an HTTP answer, or was answered 404. It is a configuration
// error (the base URL, or a server not started), not a failure of the
// requests, which stay pending.
type UnreachableError struct {
	// URL is the endpoint the last call went to; Reason what became of it,
	// and Class its error class (jobs.ClassTLS for a refused certificate).
	URL    string
	Reason string
	Class  jobs.ErrorClass
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("no answer from %s: %s", e.URL, e.Reason)
}

// outage follows the calls' ends and decides when dispatch pauses, when a
// probe may go, and when the endpoint counts as never reached. Its
// methods are safe for concurrent use.
type outage struct {
	mu  sync.Mutex
	now func() time.Time
	// after is how many failures in a row pause dispatch.
	after int
	// reached: an HTTP answer other than 404 came this run, or the job's
	// earlier results came from the same base URL.
	reached bool
	// streak counts the failures since the last success, of the requests
	// in failing.
	streak  int
	failing map[int64]struct{}
	// paused is set while dispatch is paused; since is when it paused,
	// reason why, next when the next probe may go, wait the interval
	// after it, probing whether a probe is in flight, probes how many
	// failed.
	paused      bool
	since, next time.Time
	wait        time.Duration
	reason      string
	probing     bool
	probes      int
	// gen numbers the pauses: a probe carries the pause it was admitted
	// in, so that one still out when a pause ended and another began does
	// not count for the new one.
	gen         int
	host        string
	unreachable *UnreachableError
}

func newOutage(baseURL string, concurrency int, reached bool, now func() time.Time) *outage {
	host := baseURL
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		host = u.Host
	}
	return &outage{now: now, after: min(outageAfter, max(3, concurrency)), reached: reached, host: host}
}

// admit says whether a request may be sent now, and whether it goes as
// the probe (the pause's number; 0 for no probe); when it may not, how
// long until it may.
func (o *outage) admit() (probe int, wait time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.paused {
		return 0, 0
	}
	if o.probing {
		return 0, waitForCall
	}
	if d := o.next.Sub(o.now()); d > 0 {
		return 0, d
	}
	o.probing = true
	return o.gen, 0
}

// unsent hands back a probe admitted but never sent.
func (o *outage) unsent(probe int) {
	o.mu.Lock()
	o.ownProbe(probe)
	o.mu.Unlock()
}

// ownProbe reports whether probe is the current pause's probe, and if so
// takes it back.
func (o *outage) ownProbe(probe int) bool {
	if probe == 0 || !o.paused || probe != o.gen {
		return false
	}
	o.probing = false
	return true
}

// verdict is what outage makes of the end of one call.
type verdict struct {
	// counts says whether a failure uses one of the request's attempts:
	// not while the job is paused, nor while the endpoint was never
	// reached.
	counts bool
	// hold says whether a failure that would fail the request for good
	// (a 404 before any answer) goes back to pending instead.
	hold bool
}

// done learns from the end of a call for request id (a result, or a
// failure) and says what becomes of a failure.
func (o *outage) done(id int64, probeOf int, res *jobs.Result, ce *CallError, endpoint string) verdict {
	o.mu.Lock()
	defer o.mu.Unlock()
	probe := o.ownProbe(probeOf)
	switch {
	case res != nil:
		o.reached = true
		o.endStreak()
		o.resume()
		return verdict{counts: true}
	case ce == nil:
		return verdict{counts: true}
	}
	if !o.reached && neverReached(ce) {
		return o.unreached(probe, ce, endpoint)
	}
	answered := ce.StatusCode != 0 || ce.Class == jobs.ClassBadResponse
	if answered {
		o.reached = true
	}
	if !outageClass(ce) {
		// An answer, if not one the job can use: the endpoint is there.
		o.endStreak()
		if answered {
			o.resume()
		}
		return verdict{counts: true}
	}
	wasPaused := o.paused
	o.streak++
	if len(o.failing) < outageRequests {
		if o.failing == nil {
			o.failing = map[int64]struct{}{}
		}
		o.failing[id] = struct{}{}
	}
	switch {
	case probe:
		o.probeFailed(ce)
	case !o.paused && o.streak >= o.after && len(o.failing) >= outageRequests:
		o.pause(ce, firstProbe)
	}
	return verdict{counts: !wasPaused}
}

// endStreak: an answer came; the failures in a row start again from none.
func (o *outage) endStreak() {
	o.streak = 0
	clear(o.failing)
}

// unreached handles a failure before the endpoint ever answered: the
// request goes back without using an attempt, dispatch pauses at once,
// and after unreachedProbes failed probes the run gives up.
func (o *outage) unreached(probe bool, ce *CallError, endpoint string) verdict {
	switch {
	case ce.Class == jobs.ClassTLS:
		// A certificate is refused the same way every time: no probe
		// would change it.
		o.unreachable = &UnreachableError{URL: endpoint, Reason: ce.Message, Class: ce.Class}
	case probe:
		o.probeFailed(ce)
		if o.probes >= unreachedProbes {
			o.unreachable = &UnreachableError{URL: endpoint, Reason: shortCause(ce), Class: ce.Class}
		}
	case !o.paused:
		o.pause(ce, unreachedProbe)
	}
	return verdict{hold: true}
}

func (o *outage) pause(ce *CallError, wait time.Duration) {
	now := o.now()
	o.gen++
	o.paused, o.probing, o.since, o.wait, o.probes = true, false, now, wait, 0
	o.next = now.Add(wait)
	o.reason = o.describe(ce)
}

func (o *outage) probeFailed(ce *CallError) {
	if !o.paused { // a call that ended the outage came back first
		return
	}
	o.probes++
	o.wait = min(2*o.wait, maxProbeWait)
	o.next = o.now().Add(o.wait)
	o.reason = o.describe(ce)
}

func (o *outage) resume() {
	o.paused, o.probing, o.reason = false, false, ""
}

// gaveUp returns the *UnreachableError once the endpoint counts as never
// reached.
func (o *outage) gaveUp() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.unreachable == nil {
		return nil
	}
	return o.unreachable
}

// state fills the outage part of a RunState.
func (o *outage) state(s *jobs.RunState) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.paused {
		s.Outage, s.OutageSince, s.NextProbe = o.reason, o.since, o.next
	}
}

// describe says in a few words why dispatch paused:
// "127.0.0.1:1 unreachable (connection refused)", "api.example.com
// answers 503".
func (o *outage) describe(ce *CallError) string {
	switch {
	case ce.StatusCode == 404:
		return fmt.Sprintf("%s answers 404 Not Found", o.host)
	case ce.StatusCode != 0:
		return fmt.Sprintf("%s answers %d (%s)", o.host, ce.StatusCode, ce.Class)
	case ce.Class == jobs.ClassTimeout:
		return fmt.Sprintf("%s does not answer (%s)", o.host, ce.Message)
	}
	return fmt.Sprintf("%s unreachable (%s)", o.host, shortCause(ce))
}

// neverReached reports whether ce is what a wrong base URL or a server
// that is not there gives: no request written to a server (refused, an
// unknown host, a refused or failed TLS handshake), a 404, or another 4xx
// that is no API's JSON error (a web server's "Client sent an HTTP request
// to an HTTPS server", a 405 of another service). An error on a request
// sent (a reset, a body cut short, a timeout) is not: something answered,
// and a server too busy or broken to answer well is an outage.
func neverReached(ce *CallError) bool {
	switch code := ce.StatusCode; {
	case ce.NoConnection || code == 404:
		return true
	case code < 400 || code > 499:
		return false
	case code == 401 || code == 402 || code == 403 || code == 408 || code == 409 || code == 429:
		return false
	}
	return !isJSONObject(ce.Body)
}

// isJSONObject reports whether b is a JSON object, as an API's error is.
func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// outageClass reports whether ce is a failure without an answer the job
// can use, which an outage gives: no answer, a timeout, 5xx, 408, 409,
// 429.
func outageClass(ce *CallError) bool {
	switch ce.Class {
	case jobs.ClassNetwork, jobs.ClassTimeout, jobs.ClassServer, jobs.ClassRateLimited:
		return true
	}
	return false
}

// shortCause is the end of a transport error's text, which names the
// cause ("connection refused", "no such host"), or the provider's message.
func shortCause(ce *CallError) string {
	msg := ce.Message
	if ce.StatusCode != 0 {
		return fmt.Sprintf("HTTP %d: %s", ce.StatusCode, msg)
	}
	if ce.Class == jobs.ClassTLS {
		return "TLS certificate refused"
	}
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		msg = msg[i+2:]
	}
	return msg
}
