package dispatch

import (
	"os"

	"github.com/workerpool/workerpool/job"
)

// group is the processes of one task: its child and whatever the child
// starts, stopped together. Each platform keeps them its own way: a process
// group on Unix (group_unix.go), a Job Object on Windows (group_windows.go).
// newGroup returns an empty one.
type group interface {
	// start starts the program at path, with argv and attr, as the first
	// process of the group. attr.Sys is the group's to set.
	start(path string, argv []string, attr *os.ProcAttr) (*os.Process, error)
	// terminate asks every process of the group to end: SIGTERM on Unix.
	// Windows has no such request, and ends them as kill does.
	terminate() error
	// kill ends every process of the group at once. A group whose
	// processes are all gone is not an error.
	kill() error
	// awaitExit returns once the child has exited, reporting true, or at
	// once, reporting false, where the platform cannot tell without
	// reaping it; either way, the child's Wait follows. On Linux it waits
	// on a thread when onThread is set, which wakes soonest, and in the
	// network poller otherwise, so that thousands of waiting children do
	// not hold a thread each.
	awaitExit(onThread bool) bool
	// gone reports whether the child has already exited on its own, not
	// yet waited for; false where the platform cannot tell.
	gone() bool
	// usage reports what the group's child cost, once it has been waited
	// for (ps); nil where the platform cannot tell.
	usage(ps *os.ProcessState) *job.Usage
	// release frees what the group holds. On Windows it also ends the
	// processes still in it.
	release()
}
