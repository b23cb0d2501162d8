package worker

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
	"github.com/llmbatch/llmbatch/jobs"
)

// An embeddings answer is {"object":"list","data":[{"object":"embedding",
// "index":0,"embedding":[...]}],"model":...,"usage":{"prompt_tokens":N,
// "total_tokens":N}}. Its vectors are most of its bytes and are never
// decoded here: the result keeps the body as received (Raw), which is where
// every export reads them from, and records only the model, the id where
// there is one, and the usage. It has no content and no finish reason.

// embeddingsResponse holds the fields of an embeddings answer that we
// record, read leniently as response's are.
type embeddingsResponse struct {
	ID    lenientString   `json:"id"`
	Model lenientString   `json:"model"`
	Data  dataList        `json:"data"`
	Usage *usage          `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// dataList notes whether "data" is an array (present) and has items,
// without decoding the vectors.
type dataList struct {
	present, items bool
}

func (l *dataList) UnmarshalJSON(b []byte) error {
	l.present = b[0] == '['
	l.items = l.present && b[jsonscan.SkipSpace(b, 1)] != ']'
	return nil
}

// parseEmbeddings reads a 2xx answer to an embeddings request. A body that
// is no embeddings list (invalid JSON, no "data" array, an error object and
// no item) is a failed attempt; any other is kept.
func parseEmbeddings(body []byte) (*jobs.Result, *CallError) {
	if res, ok := scanEmbeddings(body); ok {
		return res, nil
	}
	return decodeEmbeddings(body)
}

// decodeEmbeddings is parseEmbeddings with encoding/json, which defines what
// a body means; scanEmbeddings declines what it does not handle exactly as
// this does (FuzzParseEmbeddings).
func decodeEmbeddings(body []byte) (*jobs.Result, *CallError) {
	var r embeddingsResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, &CallError{Failure: jobs.Failure{Class: jobs.ClassBadResponse,
			Message: fmt.Sprintf("response is not valid JSON: %v", err)}}
	}
	if present(r.Error) && !r.Data.items {
		return nil, errorIn2xx(r.Error, body)
	}
	if !r.Data.present {
		return nil, &CallError{Failure: jobs.Failure{Class: jobs.ClassBadResponse,
			Message: "response has no data (not an embeddings list)"}}
	}
	res := &jobs.Result{ResponseID: string(r.ID), Model: string(r.Model), Raw: body}
	if r.Usage != nil {
		res.Usage = embeddingsUsage(r.Usage.read())
	}
	return res, nil
}

// embeddingsUsage is what an embeddings answer bills: its prompt tokens,
// and no completion. A server that reports only one of prompt_tokens and
// total_tokens means both.
func embeddingsUsage(u jobs.Usage) jobs.Usage {
	if !u.Known {
		return u
	}
	prompt := cmp.Or(u.PromptTokens, u.TotalTokens)
	return jobs.Usage{Known: true, PromptTokens: prompt, TotalTokens: cmp.Or(u.TotalTokens, prompt)}
}

// The top-level keys scanEmbeddings reads, indexed for its switch.
const (
	embID = iota
	embModel
	embData
	embUsage
	embError
)

var embeddingsKeys = []string{embID: "id", embModel: "model", embData: "data", embUsage: "usage", embError: "error"}

// scanEmbeddings is the fast path of parseEmbeddings: one pass of the
// response scanner that validates the vectors without decoding them. It
// declines (ok false) what scanResponse declines (a key we read given twice
// or spelled otherwise, a count that is not a plain integer, a string with
// invalid UTF-8, a value of another type), a non-null error, and every body
// that is no embeddings list, which decodeEmbeddings then reports.
func scanEmbeddings(body []byte) (*jobs.Result, bool) {
	s := scanner{b: body}
	var p picked
	data := false
	_, ok := s.fields(embeddingsKeys, func(k int) bool {
		switch k {
		case embID:
			return s.string(&p.id)
		case embModel:
			return s.string(&p.model)
		case embData:
			data = s.peek() == '['
			return data && s.skip()
		case embUsage:
			return s.usage(&p)
		}
		return s.peek() == 'n' && s.null()
	})
	if s.ws(); !ok || !data || s.i != len(body) {
		return nil, false
	}
	return p.embeddingsResult(body)
}

// embeddingsResult decodes the picked id and model into a Result.
func (p *picked) embeddingsResult(body []byte) (*jobs.Result, bool) {
	var sb strings.Builder
	sb.Grow(p.id.hi - p.id.lo + p.model.hi - p.model.lo)
	if !appendText(&sb, body[p.id.lo:p.id.hi], p.id.esc) {
		return nil, false
	}
	idEnd := sb.Len()
	if !appendText(&sb, body[p.model.lo:p.model.hi], p.model.esc) {
		return nil, false
	}
	all := sb.String()
	res := &jobs.Result{Raw: body, ResponseID: all[:idEnd], Model: all[idEnd:]}
	if p.usage {
		res.Usage = embeddingsUsage(jobs.Usage{Known: true, PromptTokens: p.prompt, TotalTokens: p.total})
	}
	return res, true
}
