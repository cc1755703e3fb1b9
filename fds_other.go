//go:build unix && !linux

package main

// closeRangeOnExec reports false: the descriptors are listed one by one.
func closeRangeOnExec() bool { return false }
