package cli

// The files export and report write: beside the target, renamed over it
// once complete.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// outputFile is where export and report write: stdout, or a temporary file
// beside the file named, which commit renames over it once complete, so
// that a failed write never truncates or half-writes the file it replaces.
type outputFile struct {
	io.Writer
	file *os.File // the file written; nil for stdout
	path string   // what commit renames file to; "" when file is written in place
	done bool
}

// createOutput returns def (stdout) when path is "" or "-"; else a
// temporary file (mode 0600) in path's directory, which the caller must
// commit or discard. A path that is a symbolic link is written through:
// the file it names is replaced. A path that exists and is no regular file
// (a device, a named pipe) is written in place: it cannot be replaced.
func createOutput(path string, def io.Writer) (*outputFile, error) {
	if path == "" || path == "-" {
		return &outputFile{Writer: def}, nil
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory", path)
	} else if err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &outputFile{Writer: f, file: f}, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, err
	}
	return &outputFile{Writer: tmp, file: tmp, path: path}, nil
}

// commit ends a complete write: the temporary file is synced, closed and
// renamed over the file named, or removed if any of that fails.
func (o *outputFile) commit() error {
	if o.file == nil || o.done {
		return nil
	}
	o.done = true
	if o.path == "" {
		return o.file.Close()
	}
	err := errors.Join(o.file.Sync(), o.file.Close())
	if err == nil {
		err = os.Rename(o.file.Name(), o.path)
	}
	if err != nil {
		os.Remove(o.file.Name())
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	return nil
}

// discard ends a write that failed: the temporary file is removed and the
// file named is left as it was. It does nothing after commit.
func (o *outputFile) discard() {
	if o.file == nil || o.done {
		return
	}
	o.done = true
	o.file.Close()
	if o.path != "" {
		os.Remove(o.file.Name())
	}
}
