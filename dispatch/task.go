// Package dispatch runs tasks on a bounded pool of executors and reports one
// Result per Task. It owns the types that flow through the pipeline: decode
// produces Tasks, encode consumes Results.
package dispatch

import (
	"context"
	"errors"
	"time"

	json "github.com/goccy/go-json"
)

// Task is one unit of work read from the input.
type Task struct {
	// Seq is the task's 1-based position in the input.
	Seq int64
	// Where says where the task was read, for error messages ("line 7").
	Where string
	// Identifier names the task in its result; it defaults to Seq as text.
	Identifier string
	Command    string
	Args       []string
	// Env adds to, and overrides, the pool's environment.
	Env map[string]string
	// Dir is the working directory; empty means the pool's.
	Dir string
	// Stdin is written to the child's standard input when HasStdin is set;
	// otherwise the child reads /dev/null.
	Stdin    string
	HasStdin bool
	// Timeout overrides the executor's default when non-zero.
	Timeout time.Duration
	// Meta is copied verbatim into the result.
	Meta json.RawMessage
	// Err is set when the task could not be read; such a task is never run
	// and its result carries the error.
	Err error
}

// Result is the outcome of one Task.
type Result struct {
	Seq        int64
	Identifier string
	// ExitCode follows the shell's conventions: the child's own code, 126
	// not executable, 127 not found, 128+N killed by signal N, 124 timed
	// out, -1 never started.
	ExitCode int
	Stdout   Output
	Stderr   Output
	// StderrCaptured reports whether Stderr holds the child's stderr (as
	// opposed to being inherited or discarded).
	StderrCaptured bool
	// Started reports whether a process was started, so Duration is
	// meaningful.
	Started  bool
	Duration time.Duration
	// Err says why the pool could not run the task, or why it stopped it.
	Err       error
	Signal    string
	TimedOut  bool
	Attempts  int
	Truncated bool
	Meta      json.RawMessage
	// Recorded marks a task whose result an earlier run already recorded:
	// it was not run, and there is nothing to write.
	Recorded bool
	// Event, when set, makes this a lifecycle notice rather than the
	// task's result: EventStarted, or EventRetrying after a failed
	// attempt (whose outcome the other fields describe). A task has any
	// number of events before its one result.
	Event string
}

// Lifecycle events, sent when Options.Events is set.
const (
	EventStarted  = "started"
	EventRetrying = "retrying"
)

// IsResult reports whether r is the task's result rather than an event.
func (r *Result) IsResult() bool { return r.Event == "" }

// Close releases what the result's outputs hold.
func (r *Result) Close() error { return errors.Join(r.Stdout.Close(), r.Stderr.Close()) }

// Failed reports whether the result counts as a failure for the pool's exit
// status.
func (r *Result) Failed() bool { return r.ExitCode != 0 || r.Err != nil }

// Exit codes that a Result may carry besides the child's own.
const (
	ExitNeverStarted  = -1
	ExitTimedOut      = 124
	ExitNotExecutable = 126
	ExitNotFound      = 127
	exitSignalBase    = 128
)

// Reasons for a task that never ran, or was stopped by the pool.
var (
	// ErrCancelled marks tasks stopped or never started because the pool
	// was interrupted.
	ErrCancelled = errors.New("cancelled")
	// ErrSkipped marks tasks never started because an earlier task failed
	// under fail-fast.
	ErrSkipped = errors.New("skipped after an earlier failure (fail-fast)")
)

// Executor runs one task to completion and reports its result. It is the
// seam between the pool and the place a task runs: the pool decides when,
// the executor decides how. Execute must return when ctx is done, stopping
// whatever it started; it is called from many goroutines at once.
type Executor interface {
	Execute(ctx context.Context, t *Task) Result
}
