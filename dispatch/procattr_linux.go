package dispatch

import (
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// platformAttr has the kernel kill the child when the pool dies, even by
// SIGKILL (Pdeathsig), and asks for a pidfd of the child, so that its exit
// can be awaited in the network poller rather than on a thread of its own.
func platformAttr(attr *syscall.SysProcAttr, w *exitWatch) {
	attr.Pdeathsig = syscall.SIGKILL
	w.fd = -1
	if usePidfd {
		attr.PidFD = &w.fd
	}
}

// usePidfd is false only in tests, which try the way of a kernel without
// pidfds (before 5.3): a thread per waiting child.
var usePidfd = true

// exitWatch waits for a child's exit through its pidfd, which becomes
// readable once the child has exited.
type exitWatch struct{ fd int }

// newExitWatch returns a watch without a pidfd: its zero value would hold
// descriptor 0, which close would close.
func newExitWatch() exitWatch { return exitWatch{fd: -1} }

// wait returns true once the child pid has exited, without reaping it:
// on this thread when onThread is set (waitid WNOWAIT), else through the
// pidfd in the network poller. It returns false at once when it cannot
// wait so (no pidfd: an old kernel), leaving the wait to the child's Wait.
func (w *exitWatch) wait(pid int, onThread bool) bool {
	if onThread {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		for err == unix.EINTR {
			err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		}
		return err == nil
	}
	if w.fd < 0 || syscall.SetNonblock(w.fd, true) != nil {
		return false
	}
	// The File takes the descriptor over, and the poller its waiting.
	f := os.NewFile(uintptr(w.fd), "pidfd")
	w.fd = -1
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	exited := false
	err = rc.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		exited = n > 0
		return exited || err != nil && err != unix.EINTR
	})
	return err == nil && exited
}

// gone reports whether the child pid has already exited (and is not yet
// waited for), without reaping it.
func (w *exitWatch) gone(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo != 0
}

// close releases the pidfd if wait did not.
func (w *exitWatch) close() {
	if w.fd >= 0 {
		syscall.Close(w.fd)
		w.fd = -1
	}
}

// reserveThreads has the Go runtime make n threads now and keep them idle,
// so that it need not make one later: when the children of a wide pool
// fill the user's process limit (ulimit -u), which counts threads too, a
// thread the runtime fails to make is fatal.
func reserveThreads(n int) {
	var locked, release sync.WaitGroup
	locked.Add(n)
	release.Add(1)
	for range n {
		go func() {
			runtime.LockOSThread() // one thread each, while all are held
			locked.Done()
			release.Wait()
			runtime.UnlockOSThread() // the thread goes back, idle
		}()
	}
	locked.Wait()
	release.Done()
}
