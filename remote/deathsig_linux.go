package remote

import (
	"os/exec"
	"syscall"
)

// interruptAtDeath has the kernel send cmd, started by detach, SIGINT
// should the pool die first, even by SIGKILL: a salloc still waiting for
// its allocation then withdraws the request rather than take an
// allocation that nobody would give back.
func interruptAtDeath(cmd *exec.Cmd) { cmd.SysProcAttr.Pdeathsig = syscall.SIGINT }
