//go:build !unix

package cli

import "os"

// closedAtStart reports whether f, a standard descriptor, cannot be used.
func closedAtStart(f *os.File) bool {
	_, err := f.Stat()
	return err != nil
}
