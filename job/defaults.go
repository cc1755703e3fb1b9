package job

import "time"

// Defaults are what a run gives the tasks that do not say: a time limit
// and limits. They are applied once, as each task is read (see Apply), so
// that every executor, here or on another host, and the dry run see the
// same task.
type Defaults struct {
	// Timeout limits each task that has no "timeout" of its own; zero
	// means none.
	Timeout time.Duration
	// Limits cap what each task may take, but for the limits it sets
	// itself.
	Limits Limits
	// Request is the room of each task that asks for none itself: CPUs
	// for one whose "cpus" is unset (0 means 1), Memory for one whose
	// "memory" is unset.
	Request Request
}

// Apply gives t the defaults it does not set itself: the time limit, when
// HasTimeout is not set, each limit it leaves at zero, and the room it does
// not ask for. A task's memory request (its own or the run's) is its
// memory limit too, unless the task's own limits set one; the run's
// default memory limit applies only to a task that asks for no memory.
func (d Defaults) Apply(t *Task) {
	if !t.HasTimeout {
		t.Timeout = d.Timeout
	}
	if t.Request.CPUs == 0 {
		t.Request.CPUs = d.Request.CPUs
	}
	if t.Request.Memory == 0 {
		t.Request.Memory = d.Request.Memory
	}
	if t.Limits.Memory == 0 {
		t.Limits.Memory = t.Request.Memory
	}
	t.Limits = t.Limits.Or(d.Limits)
}
