//go:build !linux

package cli

// checkAddressSpace reports nothing: the address space a run needs is
// known, and checked, on Linux.
func checkAddressSpace() error { return nil }
