//go:build !linux

package sqlite

// readOnlyMount cannot tell a read-only mount here: OpenReadOnly then
// opens immutable only a file no one may write.
func readOnlyMount(string) bool { return false }
