//go:build unix && !linux

package dispatch

// exitWatch does nothing here: the child's Wait waits, on a thread.
type exitWatch struct{}

func newExitWatch() exitWatch { return exitWatch{} }

func (*exitWatch) wait(int, bool) bool { return false }

// gone reports false: the platform cannot tell without reaping the child.
func (*exitWatch) gone(int) bool { return false }
func (*exitWatch) close()        {}

// reserveThreads does nothing here: see the Linux version.
func reserveThreads(int) {}
