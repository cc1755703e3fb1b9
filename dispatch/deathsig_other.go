//go:build unix && !linux && !freebsd

package dispatch

import "syscall"

// deathSignal does nothing here: the platform cannot signal a child when
// its parent dies, so a pool killed by SIGKILL leaves its running tasks.
func deathSignal(*syscall.SysProcAttr) {}
