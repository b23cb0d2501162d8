package input

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// Fingerprint returns the fingerprint Reader.Fingerprint gives for the file
// at path and opts, by hashing the file without parsing it: the cheap way to
// tell whether an existing job's file (or --model) has changed.
func Fingerprint(path string, opts Options) (string, error) {
	h, err := hashFile(path)
	if err != nil {
		return "", err
	}
	return sum(h, opts), nil
}

// sum finishes a hash of the file's bytes with the options. DefaultModel is
// always included, used or not, because deciding whether a line used it
// would need a parse; so a new --model counts as a change.
func sum(h hash.Hash, opts Options) string {
	io.WriteString(h, "\x00model=")
	io.WriteString(h, opts.DefaultModel)
	return hex.EncodeToString(h.Sum(nil))
}

// hashFile returns a sha256 hash that has read the whole file at path.
func hashFile(path string) (hash.Hash, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return h, nil
}
