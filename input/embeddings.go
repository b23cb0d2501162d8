package input

import (
	"fmt"
	"math"

	"github.com/llmbatch/llmbatch/jobs"
)

// embeddingParams are the checks of an embeddings body's own fields. They
// apply only to a body that goes to the embeddings endpoint (a chat body's
// "input" is not ours to read) and before params, whose "stream" check an
// embeddings body must not pass.
var embeddingParams = map[string]check{
	"input":           checkInput,
	"encoding_format": optional(checkEncodingFormat),
	"dimensions":      optional(integerIn(1, math.Inf(1))),
	"stream":          noStream,
}

// checkInput accepts the shapes of a completions prompt, without empty
// strings: the API embeds text, and an empty one is refused.
func checkInput(field string, v []byte) string { return checkTexts(field, v, true) }

func checkEncodingFormat(field string, v []byte) string {
	if s := string(trimSpace(v)); s == `"float"` || s == `"base64"` {
		return ""
	}
	return fmt.Sprintf(`%q must be "float" or "base64", got %s`, field, got(v))
}

// noStream refuses "stream" in an embeddings body, whatever its value: the
// endpoint has no streamed answer, and the OpenAI API refuses the field.
func noStream(field string, _ []byte) string {
	return fmt.Sprintf("%q is not allowed in an embeddings body (embeddings are never streamed)", field)
}

// checkFor returns the check of a body field for the endpoint of p, if the
// field has one.
func checkFor(p *parsed, key string) (check, bool) {
	if p.endpoint == jobs.EndpointEmbeddings {
		if c, ok := embeddingParams[key]; ok {
			return c, true
		}
	}
	c, ok := params[key]
	return c, ok
}
