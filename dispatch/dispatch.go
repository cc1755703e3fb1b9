// Package dispatch runs tasks on a bounded pool and reports exactly one
// job.Result per job.Task, whatever happens to it.
//
// A Pool decides when a task runs; an Executor decides how. Local is the
// Executor that runs each task as a child process on this machine, in a
// process group of its own (a Job Object on Windows), so that stopping a
// task stops everything it started.
package dispatch

import (
	"context"

	"github.com/workerpool/workerpool/job"
)

// Executor runs one task to completion and reports its result. It is the
// seam between the pool and the place a task runs. Execute must return
// soon after ctx is done, stopping whatever it started; a task stopped so
// has job.ErrCancelled as its Err. It is called from many goroutines at once.
type Executor interface {
	Execute(ctx context.Context, t *job.Task) job.Result
}
