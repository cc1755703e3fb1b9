//go:build unix

package remote

import (
	"os/exec"
	"syscall"
)

// detach starts cmd in a process group of its own, out of the terminal's
// foreground group: a ^C reaches the pool, which stops the remote tasks in
// order, and not ssh, which would drop them.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }
