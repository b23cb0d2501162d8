package sqlite

import (
	"path/filepath"
	"syscall"
)

// stRdonly is ST_RDONLY, the statfs flag of a file system mounted read-only.
const stRdonly = 0x1

// readOnlyMount says whether the file system that holds path is mounted
// read-only.
func readOnlyMount(path string) bool {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &fs); err != nil {
		return false
	}
	return fs.Flags&stRdonly != 0
}
