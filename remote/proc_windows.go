package remote

import (
	"os/exec"
	"syscall"
)

// detach starts cmd in a process group of its own, so that a console's
// Ctrl+C reaches the pool, which stops the remote tasks in order, and not
// ssh, which would drop them.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}
