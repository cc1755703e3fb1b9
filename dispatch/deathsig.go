//go:build linux || freebsd

package dispatch

import "syscall"

// deathSignal has the kernel kill the child when the pool dies, even by
// SIGKILL, so that a killed pool does not leave its tasks running.
func deathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }
