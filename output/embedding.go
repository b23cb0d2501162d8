package output

// Embeddings answers hold their vector in the body:
// {"object":"list","data":[{"object":"embedding","embedding":[...],"index":0}],...},
// as a JSON array of numbers, or with "encoding_format":"base64" as a
// base64 string of little-endian float32s. The store keeps the body as
// received; the exports read the vector from it.

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/llmbatch/llmbatch/internal/jsonscan"
	"github.com/llmbatch/llmbatch/jobs"
)

// firstEmbedding returns the vector of the first item of an embeddings
// body as sent: a JSON array or a JSON string. ok is false when the body
// has none. Keys are matched as encoding/json matches them, which is how
// the worker read the body when it recorded it: the last of the keys equal
// but for case.
func firstEmbedding(raw []byte) (vec []byte, ok bool) {
	data, ok := lookupFold(raw, "data")
	if !ok {
		return nil, false
	}
	for _, item := range jsonscan.Items(data) {
		v, ok := lookupFold(item, "embedding")
		if v = jsonscan.TrimSpace(v); !ok || len(v) == 0 || (v[0] != '[' && v[0] != '"') {
			return nil, false
		}
		return v, true
	}
	return nil, false
}

// lookupFold returns the value of the last top-level member of object b
// whose key is key but for case.
func lookupFold(b []byte, key string) ([]byte, bool) {
	ms, err := jobs.Members(b)
	if err != nil {
		return nil, false
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if strings.EqualFold(ms[i].Key, key) {
			return b[ms[i].ValueStart:ms[i].End], true
		}
	}
	return nil, false
}

var errVectorItem = errors.New("an item of the vector is not a number")

// appendFloats appends the numbers of vec to dst as float32s, the
// precision embeddings models compute in.
func appendFloats(dst []float32, vec []byte) ([]float32, error) {
	if vec[0] == '"' {
		return appendBase64Floats(dst, vec)
	}
	var err error
	for _, item := range jsonscan.Items(vec) {
		f, perr := strconv.ParseFloat(string(item), 32)
		if perr != nil {
			err = errVectorItem
			break
		}
		dst = append(dst, float32(f))
	}
	return dst, err
}

// appendBase64Floats decodes the base64 JSON string s as little-endian
// float32s.
func appendBase64Floats(dst []float32, s []byte) ([]float32, error) {
	text, ok := unquote(s)
	if !ok {
		return dst, errors.New("the vector is not a JSON string")
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		// Some servers leave the padding out.
		if b, err = base64.RawStdEncoding.DecodeString(text); err != nil {
			return dst, fmt.Errorf("the base64 vector: %w", err)
		}
	}
	if len(b)%4 != 0 {
		return dst, fmt.Errorf("the base64 vector has %d bytes, not a whole number of float32s", len(b))
	}
	for i := 0; i < len(b); i += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	return dst, nil
}

// appendVectorJSON appends vec as a JSON array: an array as it was sent
// (on one line), a base64 vector decoded, each float32 spelled as short as
// it reads back exactly (NaN and infinities, which JSON cannot spell, as
// null).
func (r *rawAppender) appendVectorJSON(dst, vec []byte, scratch *[]float32) ([]byte, error) {
	if vec[0] == '[' {
		return r.appendRaw(dst, vec)
	}
	fs, err := appendBase64Floats((*scratch)[:0], vec)
	*scratch = fs
	if err != nil {
		return dst, err
	}
	dst = append(dst, '[')
	for i, f := range fs {
		if i > 0 {
			dst = append(dst, ',')
		}
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			dst = append(dst, "null"...)
			continue
		}
		dst = strconv.AppendFloat(dst, float64(f), 'g', -1, 32)
	}
	return append(dst, ']'), nil
}
