package dispatch

import "syscall"

// platformAttr has the kernel kill the child when the pool dies, even by
// SIGKILL (PROC_PDEATHSIG_CTL).
func platformAttr(attr *syscall.SysProcAttr, _ *exitWatch) { attr.Pdeathsig = syscall.SIGKILL }

// exitWatch does nothing here: the child's Wait waits, on a thread.
type exitWatch struct{}

func newExitWatch() exitWatch { return exitWatch{} }

func (*exitWatch) wait(int, bool) bool { return false }

// gone reports false: the platform cannot tell without reaping the child.
func (*exitWatch) gone(int) bool { return false }
func (*exitWatch) close()        {}

// reserveThreads does nothing here: see the Linux version.
func reserveThreads(int) {}
