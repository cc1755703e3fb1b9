package dispatch

import "syscall"

// platformAttr has the kernel kill the child when the pool dies, even by
// SIGKILL (PROC_PDEATHSIG_CTL).
func platformAttr(attr *syscall.SysProcAttr, _ *exitWatch) { attr.Pdeathsig = syscall.SIGKILL }
