package jobs

import "github.com/llmbatch/llmbatch/internal/jsonscan"

// MaxJSONDepth is encoding/json's nesting limit; deeper values are
// invalid.
const MaxJSONDepth = 10000

// ValidValue returns the index just past the JSON value at b[i] and
// whether it is valid as encoding/json has it (RFC 8259), nested no deeper
// than limit (MaxJSONDepth for encoding/json's own; depth is how deep b[i]
// already is). Both the import, which checks every line, and the worker,
// which skips the parts of an answer it does not read, walk the grammar
// with it (jsonscan.Valid) instead of asking encoding/json.
func ValidValue(b []byte, i, depth, limit int) (int, bool) {
	return jsonscan.Valid(b, i, depth, limit)
}
