//go:build unix && !linux && !freebsd

package dispatch

import "syscall"

// platformAttr adds nothing: the platform cannot signal a child when its
// parent dies, so a pool killed by SIGKILL leaves its running tasks.
func platformAttr(*syscall.SysProcAttr, *exitWatch) {}
