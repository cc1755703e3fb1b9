//go:build unix

package cli

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// closeInheritedOnExec marks every descriptor above stderr close-on-exec.
// Those the program opens itself are already; those it inherited open (a
// PHP script's files and sockets, say) would otherwise leak into every
// task it starts.
func closeInheritedOnExec() {
	if closeRangeOnExec() {
		return
	}
	entries, err := os.ReadDir("/dev/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
