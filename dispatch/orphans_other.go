//go:build !linux

package dispatch

// adoptOrphans does nothing: only Linux has child subreapers, so a process
// a task starts in a session of its own escapes the task's group.
func adoptOrphans() error { return nil }

func endOrphans() {}
