package input

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/llmbatch/llmbatch/jobs"
)

// Samples hands out each request of a source k times, as k independent
// requests: with k > 1 the custom_ids are ID#0 … ID#k-1, each stored,
// sent, retried and resumed on its own. It gives every request its cache
// key (jobs.CacheKey with the sample index), for any k, so that a later
// job can be answered from this one's results. It implements
// jobs.RequestSource, and jobs.Fingerprinter when the source does.
type Samples struct {
	src   jobs.RequestSource
	k     int
	cur   jobs.Request
	canon []byte // cur's canonical body; nil when it has none
	// canonicalizer writes canon, into a buffer reused from request to
	// request.
	canonicalizer jobs.Canonicalizer
	i             int // the next sample of cur; k when cur is used up
}

// WithSamples returns src with each request repeated k times (k < 1 counts
// as 1).
func WithSamples(src jobs.RequestSource, k int) *Samples {
	k = max(k, 1)
	return &Samples{src: src, k: k, i: k}
}

// Next returns the next sample, or what src.Next returned.
func (s *Samples) Next() (jobs.Request, error) {
	if s.i >= s.k {
		r, err := s.src.Next()
		if err != nil || r.Invalid != "" {
			return r, err // an invalid line is kept once, and never answered from the cache
		}
		s.cur, s.i = r, 0
		// Every source validates its bodies, so the canonicalizer need
		// not; a body that is not a JSON object is simply never answered
		// from the cache.
		s.canon, _ = s.canonicalizer.ValidBody(r.Body)
	}
	r := s.cur
	if s.k > 1 {
		r.CustomID = fmt.Sprintf("%s#%d", r.CustomID, s.i)
	}
	if s.canon != nil {
		r.CacheKey = jobs.CanonicalKey(r.Endpoint, s.canon, s.i)
	}
	s.i++
	return r, nil
}

// Reject passes the rejection of a line on to the source.
func (s *Samples) Reject(line int, reason string) { s.src.Reject(line, reason) }

// Err returns the source's error.
func (s *Samples) Err() error { return s.src.Err() }

// Fingerprint is the source's fingerprint, with k in it when k > 1 (so
// that a job imported once stays the same job with --samples 1).
func (s *Samples) Fingerprint() string {
	f, ok := s.src.(jobs.Fingerprinter)
	if !ok {
		return ""
	}
	return SamplesFingerprint(f.Fingerprint(), s.k)
}

// Close closes the source when it can be closed.
func (s *Samples) Close() error {
	if c, ok := s.src.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// SamplesFingerprint is the fingerprint of a source with fingerprint fp
// read with k samples per request.
func SamplesFingerprint(fp string, k int) string {
	if k <= 1 || fp == "" {
		return fp
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00samples=%d", fp, k))
	return hex.EncodeToString(h[:])
}

// KeepsInvalid is the source's, when it has one.
func (s *Samples) KeepsInvalid() bool {
	k, ok := s.src.(interface{ KeepsInvalid() bool })
	return ok && k.KeepsInvalid()
}
