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
}

// Apply gives t the defaults it does not set itself: the time limit, when
// HasTimeout is not set, and each limit it leaves at zero.
func (d Defaults) Apply(t *Task) {
	if !t.HasTimeout {
		t.Timeout = d.Timeout
	}
	t.Limits = t.Limits.Or(d.Limits)
}
