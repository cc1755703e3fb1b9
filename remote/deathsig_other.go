//go:build !linux

package remote

import "os/exec"

// interruptAtDeath does nothing where the kernel cannot signal a child
// when its parent dies.
func interruptAtDeath(*exec.Cmd) {}
