package fakeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
)

// batchLine is one request of a batch input file.
type batchLine struct {
	no       int // 1-based line number in the file, blank lines counted
	customID string
	url      string
	body     []byte // a JSON object, as written in the file
	model    string // body.model: a string unquoted, anything else as its JSON text
}

// batchError is one of the errors a batch that failed validation lists,
// shaped as OpenAI's: param and line are null when they do not apply.
type batchError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
	Line    *int    `json:"line"`
}

// maxValidationErrors bounds the errors a failed batch lists, so that a
// file of garbage does not make a batch object of megabytes.
const maxValidationErrors = 20

func lineError(code string, line int, param, msg string) batchError {
	e := batchError{Code: code, Message: msg, Line: &line}
	if param != "" {
		e.Param = &param
	}
	return e
}

// inputLine is what the fake reads of a line of an input file.
type inputLine struct {
	CustomID *string         `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

// parseBatchInput reads a batch input file: one request a line, as
// {"custom_id","method":"POST","url","body":{...}}; blank lines are
// skipped. It returns the requests, or the errors that fail the batch's
// validation (a line that is not such an object, a custom_id missing or
// used twice, an empty file). The url is not checked here: a line whose url
// is not the batch's endpoint is answered with an error line.
func parseBatchInput(data []byte) ([]batchLine, []batchError) {
	var (
		lines []batchLine
		errs  []batchError
		seen  = map[string]int{}
	)
	for no, raw := range bytes.Split(data, []byte("\n")) {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		l, e := parseInputLine(no+1, raw)
		if first, dup := seen[l.customID]; e == nil && dup {
			d := lineError("duplicate_custom_id", no+1, "custom_id",
				fmt.Sprintf("Line %d repeats the custom_id %s of line %d.", no+1, strconv.Quote(l.customID), first))
			e = &d
		} else if e == nil {
			seen[l.customID] = no + 1
		}
		if e != nil {
			if errs = append(errs, *e); len(errs) == maxValidationErrors {
				break
			}
			continue
		}
		lines = append(lines, l)
	}
	if len(errs) == 0 && len(lines) == 0 {
		errs = append(errs, batchError{Code: "empty_file", Message: "The input file has no requests."})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return lines, nil
}

// parseInputLine reads the line numbered no.
func parseInputLine(no int, raw []byte) (batchLine, *batchError) {
	fail := func(code, param, msg string) (batchLine, *batchError) {
		e := lineError(code, no, param, msg)
		return batchLine{}, &e
	}
	var in inputLine
	if raw[0] != '{' || json.Unmarshal(raw, &in) != nil {
		return fail("invalid_json_line", "", fmt.Sprintf("Line %d is not a JSON object of a request.", no))
	}
	switch {
	case in.CustomID == nil || *in.CustomID == "":
		return fail("missing_required_parameter", "custom_id", fmt.Sprintf("Line %d has no custom_id.", no))
	case in.Method != "POST":
		return fail("invalid_request", "method", fmt.Sprintf("Line %d: method must be POST, not %s.", no, strconv.Quote(in.Method)))
	case in.URL == "":
		return fail("missing_required_parameter", "url", fmt.Sprintf("Line %d has no url.", no))
	}
	body := bytes.TrimSpace(in.Body)
	var fields struct {
		Model json.RawMessage `json:"model"`
	}
	if len(body) == 0 || body[0] != '{' || json.Unmarshal(body, &fields) != nil {
		return fail("invalid_request", "body", fmt.Sprintf("Line %d: body must be a JSON object.", no))
	}
	return batchLine{no: no, customID: *in.CustomID, url: in.URL, body: body, model: modelName(fields.Model)}, nil
}

// modelName is how a validation message names a model: a string unquoted,
// anything else (a number, null, nothing) as its JSON text.
func modelName(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// batchRules are the knobs of Config that decide a batch's fate when it is
// created; they are fixed then, so SetConfig does not change a running
// batch.
type batchRules struct {
	nth          int64 // the batch's 1-based creation number
	failNth      int
	maxLines     int
	oneModel     bool
	expire       float64
	refuseStream bool
}

// validate returns the errors that fail a batch of these lines, nil if it
// passes: BatchFailNth first (a provider's hiccup, whatever the file), then
// the file's own errors, then BatchMaxLines, then BatchOneModel.
func (r batchRules) validate(lines []batchLine, fileErrs []batchError) []batchError {
	switch {
	case r.failNth > 0 && r.nth == int64(r.failNth):
		return []batchError{{Code: "invalid_file", Message: "The file could not be validated; please try again."}}
	case len(fileErrs) > 0:
		return fileErrs
	case r.maxLines > 0 && len(lines) > r.maxLines:
		return []batchError{{Code: "too_many_requests",
			Message: fmt.Sprintf("The input file has %d requests; a batch may hold at most %d.", len(lines), r.maxLines)}}
	case r.oneModel && len(lines) > 1:
		for _, l := range lines[1:] {
			if l.model != lines[0].model {
				return []batchError{lineError("mixed_models", l.no, "",
					fmt.Sprintf("All requests in a batch must use the same model: line %d asks for %s, line %d for %s.",
						l.no, l.model, lines[0].no, lines[0].model))}
			}
		}
	}
	return nil
}

// expires reports whether the line with customID is one of the
// BatchExpireFraction that batch batchID never answers. It is drawn from a
// hash of both, so the same line sent again in another batch draws afresh.
func (r batchRules) expires(batchID, customID string) bool {
	if r.expire <= 0 {
		return false
	}
	h := fnv.New64a()
	h.Write([]byte(batchID))
	h.Write([]byte{0})
	h.Write([]byte(customID))
	return float64(splitmix64(h.Sum64())>>11)/(1<<53) < r.expire
}
