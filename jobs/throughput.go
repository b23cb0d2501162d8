package jobs

import "time"

// Throughput is how many requests a job completed in a window of time that
// ends when the statistics were read, and how many tokens they used.
type Throughput struct {
	// Window is the length asked for (a minute, five minutes).
	Window time.Duration
	// Span is what the rates divide by: the window, cut to begin when the
	// earliest attempt it counts started if that is later, so that a run
	// that began 30 seconds ago is measured over those 30 seconds, not
	// over 5 minutes. Zero when nothing completed in the window.
	Span time.Duration
	// Requests counts the requests that completed in the window, by the
	// end of their last attempt: those that succeeded and those that failed
	// for good. Results copied from the cache are not counted.
	Requests int
	// Tokens sums the total tokens the succeeded ones reported;
	// TokensKnown is false when none of them reported usage.
	Tokens      int64
	TokensKnown bool
}

// Idle reports whether nothing completed in the window.
func (t Throughput) Idle() bool { return t.Requests == 0 || t.Span <= 0 }

// RequestsPerSecond is Requests over Span, 0 when idle.
func (t Throughput) RequestsPerSecond() float64 {
	if t.Idle() {
		return 0
	}
	return float64(t.Requests) / t.Span.Seconds()
}

// TokensPerSecond is Tokens over Span, 0 when idle.
func (t Throughput) TokensPerSecond() float64 {
	if t.Idle() {
		return 0
	}
	return float64(t.Tokens) / t.Span.Seconds()
}

// ETAState says what kind of answer an ETA is.
type ETAState string

const (
	// ETADone: no request is left to send (every one is final), or the job
	// is cancelled.
	ETADone ETAState = "done"
	// ETAUnknown: requests are left but nothing completed in the last five
	// minutes, so there is no rate to extrapolate.
	ETAUnknown ETAState = "unknown"
	// ETAEstimated: Left is the requests left divided by the rate of the
	// last five minutes.
	ETAEstimated ETAState = "estimated"
)

// ETA is how long the rest of a job should take.
type ETA struct {
	State ETAState
	// Remaining counts the pending and running requests.
	Remaining int
	// Left is the estimate, rounded to whole seconds; zero unless State is
	// ETAEstimated.
	Left time.Duration
}

// maxETA is the longest ETA told (a hundred years): past it the estimate
// would overflow a time.Duration, and means nothing anyway.
const maxETA = 100 * 365 * 24 * time.Hour

// ETA extrapolates the requests left (pending and running) at the rate
// of the last five minutes.
func (s Stats) ETA() ETA {
	e := ETA{Remaining: s.Counts[StatusPending] + s.Counts[StatusRunning]}
	rate := s.Last5m.RequestsPerSecond()
	switch {
	case e.Remaining == 0 || s.Job.State == JobCancelled:
		e.State, e.Remaining = ETADone, 0
	case rate <= 0:
		e.State = ETAUnknown
	default:
		e.State = ETAEstimated
		e.Left = maxETA
		if secs := float64(e.Remaining) / rate; secs < maxETA.Seconds() {
			e.Left = time.Duration(secs * float64(time.Second)).Round(time.Second)
		}
	}
	return e
}

// Overall is the job's throughput from the start of its first attempt to
// the end of its last, pauses between runs included: the requests that
// completed through the API (succeeded but not cached, and failed but not
// kept invalid at import, which were never sent) and the tokens of the
// job; no span while none has completed. Zero when the job has no attempt
// yet.
func (s Stats) Overall() Throughput {
	t := Throughput{Window: s.LastAttempt.Sub(s.FirstAttempt), Tokens: s.Usage.TotalTokens, TokensKnown: s.Usage.Known}
	if s.FirstAttempt.IsZero() || s.LastAttempt.IsZero() {
		return Throughput{}
	}
	invalid := 0
	for _, c := range s.Errors {
		if c.Class == ClassInvalidInput { // counted by request: none was attempted
			invalid += c.Count
		}
	}
	t.Requests = max(0, s.Counts[StatusSucceeded]-s.Cached) + max(0, s.Counts[StatusFailed]-invalid)
	if t.Requests > 0 {
		t.Span = t.Window
	}
	return t
}
