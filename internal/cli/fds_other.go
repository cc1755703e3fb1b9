//go:build unix && !linux

package cli

// closeRangeOnExec reports false: the descriptors are listed one by one.
func closeRangeOnExec() bool { return false }
