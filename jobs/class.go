package jobs

// ErrorClass names the kind of a failed attempt, for retry decisions,
// statistics and messages.
type ErrorClass string

const (
	// ClassRateLimited: HTTP 429.
	ClassRateLimited ErrorClass = "rate_limited"
	// ClassServer: HTTP 5xx, 408 or 409.
	ClassServer ErrorClass = "server_error"
	// ClassTimeout: no complete answer within the attempt's timeout.
	ClassTimeout ErrorClass = "timeout"
	// ClassNetwork: the connection failed or was reset.
	ClassNetwork ErrorClass = "network"
	// ClassBadResponse: a 2xx whose body is not the JSON we expect, or a
	// stream cut short.
	ClassBadResponse ErrorClass = "bad_response"
	// ClassInvalidRequest: HTTP 400, 404, 422 and other 4xx the request
	// itself caused.
	ClassInvalidRequest ErrorClass = "invalid_request"
	// ClassAuth: HTTP 401 or 403; fatal for the run.
	ClassAuth ErrorClass = "auth"
	// ClassPayment: HTTP 402 (insufficient balance); fatal for the run.
	ClassPayment ErrorClass = "payment"
	// ClassInvalidInput: a line of the input file that failed validation,
	// kept as a failed request by import --skip-invalid. It is never sent,
	// and retry leaves it failed: no attempt could make it valid.
	ClassInvalidInput ErrorClass = "invalid_input"
	// ClassTLS: the server's TLS certificate was refused (unknown
	// authority, wrong host name, expired); fatal for the run, because
	// every request would meet the same certificate.
	ClassTLS ErrorClass = "tls"
	// ClassBatchExpired: a provider batch ended before it answered the
	// line (its 24 h window passed); the line is sent again.
	ClassBatchExpired ErrorClass = "batch_expired"
)

// Disposition is what an error class means for the request and the run.
type Disposition int

const (
	// Retryable errors put the request back to pending with a backoff.
	Retryable Disposition = iota
	// Permanent errors fail the request; the job goes on.
	Permanent
	// Fatal errors stop the run; the request stays pending.
	Fatal
)

// Disposition returns how an error of class c is handled.
func (c ErrorClass) Disposition() Disposition {
	switch c {
	case ClassInvalidRequest, ClassInvalidInput:
		return Permanent
	case ClassAuth, ClassPayment, ClassTLS:
		return Fatal
	default:
		return Retryable
	}
}

// ClassForStatus maps an HTTP status code that is not 2xx to its class.
func ClassForStatus(code int) ErrorClass {
	switch {
	case code == 429:
		return ClassRateLimited
	case code == 401 || code == 403:
		return ClassAuth
	case code == 402:
		return ClassPayment
	case code == 408 || code == 409 || code >= 500:
		return ClassServer
	default:
		return ClassInvalidRequest
	}
}
