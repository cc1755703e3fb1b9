//go:build unix

package cli

import (
	"os"

	"golang.org/x/sys/unix"
)

// closedAtStart reports whether f, a standard descriptor, was closed when
// the program started. The Go runtime then opens /dev/null in its place,
// read-write, where a shell's "> /dev/null" opens it write-only.
func closedAtStart(f *os.File) bool {
	info, err := f.Stat()
	if err != nil {
		return true
	}
	null, err := os.Stat(os.DevNull)
	if err != nil || !os.SameFile(info, null) {
		return false
	}
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	return err == nil && flags&unix.O_ACCMODE == unix.O_RDWR
}
