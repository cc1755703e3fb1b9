//go:build unix

package pipeline

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// watchReader calls gone once the reading end of w goes away, when w is a
// pipe: the pool then stops at once rather than at its next write, which may
// be a long task away. stop ends the watch.
func watchReader(w io.Writer, gone func()) (stop func()) {
	f, ok := w.(*os.File)
	if !ok {
		return func() {}
	}
	if info, err := f.Stat(); err != nil || info.Mode()&os.ModeNamedPipe == 0 {
		return func() {}
	}
	wakeR, wakeW, err := os.Pipe()
	if err != nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer wakeR.Close()
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: 0}, {Fd: int32(wakeR.Fd()), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err == nil && fds[1].Revents == 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
				gone()
			}
			return
		}
	}()
	return func() {
		wakeW.Close()
		<-done
	}
}
