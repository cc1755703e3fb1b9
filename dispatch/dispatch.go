// Package dispatch runs tasks on a bounded pool and reports exactly one
// job.Result per job.Task, whatever happens to it.
//
// A Pool decides when a task runs; an Executor decides how. Local is the
// Executor that runs each task as a child process on this machine, in a
// process group of its own (a Job Object on Windows), so that stopping a
// task stops everything it started.
//
// Between one child's exit and the next spawn in its slot, a task passes
// two hands. The worker wakes when the child exits (waitid on a thread of
// its own, or its pidfd in the network poller), reaps it and waits for the
// two goroutines reading its stdout and stderr, which wake at the pipes'
// end at the same time; the result then waits in a buffer for the writer,
// and the worker takes its next task from the feed, which is already
// waiting to hand it over, and starts it. Decoding the next task, and
// encoding and writing this result, happen meanwhile on other goroutines.
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

// Slots is an Executor whose room for tasks is a set of slots that may
// change while it runs: the slots of remote hosts that join, fail and come
// back, each host with its memory. A Pool given one starts a task only
// once TryAcquire has given it room, and runs the task there, so that no
// task waits in a place that cannot start it; Options.Workers then plays
// no part but for how often a large task may be passed (see queue).
type Slots interface {
	Executor
	// TryAcquire takes room for need on one host: need.CPUs slots and
	// need.Memory of its memory, held until the Slot is released. When no
	// host has that much free now, it returns a nil Slot, a channel closed
	// at the next change of the room free (a slot given back, a host up
	// or gone), and the resource that is short (job.ResourceCPUs or
	// job.ResourceMemory). It fails when no room can come: every host is
	// gone, or need is more than any host has (ErrTooLarge), saying why.
	TryAcquire(need job.Request) (slot Slot, wake <-chan struct{}, short string, err error)
}

// Slot is room for one task at a time, from Slots.TryAcquire.
type Slot interface {
	// Execute runs an attempt of a task in the slot. An attempt cut short
	// because the slot's host was lost has job.ErrHostLost in its Err.
	Executor
	// Host names the host the slot is on.
	Host() string
	// Release gives the slot back, once its attempts are over.
	Release()
}

// maxHostLosses is how many times at most a task runs again elsewhere
// because the host running it was lost. It bounds the damage of a task
// that brings down each host it runs on.
const maxHostLosses = 3
