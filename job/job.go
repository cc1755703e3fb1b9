// Package job is the data that flows through workerpool: a Task read from
// the input, the Result of running it, the Output it captured and the
// Events of its life in between. It holds no behaviour of the stages that
// produce and consume them (decode, dispatch, encode), and nothing specific
// to an operating system, so every stage builds and tests on every platform.
package job

import (
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
	// Chunk, when set, says which part of the input the task's stdin is:
	// a chunk of --pipe or --pipepart. With Chunk.Path set, the child
	// reads those bytes of that file, and Stdin is empty; otherwise Stdin
	// holds them.
	Chunk *Chunk
	// Timeout is the task's time limit; zero means none. HasTimeout says
	// that the task set it itself; otherwise it is the run's default, once
	// Defaults are applied.
	Timeout    time.Duration
	HasTimeout bool
	// SlotWords, when set, holds for each word of the command line
	// (Command, then Args) that names the slot the task runs in, the parts
	// of the word around the slot's number (GNU parallel's "{%}"); nil for
	// the other words. The pool joins them with the slot's number before
	// the task runs.
	SlotWords [][]string
	// Limits caps what the task may take; the run's defaults fill in
	// those it does not set (Defaults.Apply).
	Limits Limits
	// Request is the room the task takes while it runs; the run's defaults
	// fill in what it does not ask for (Defaults.Apply).
	Request Request
	// Transfer names the files sent to the host that runs the task before
	// it starts, and Return those brought back once it has ended, as
	// relative paths, read and written relative to Dir (or the pool's
	// working directory) here: --transferfile and --return, their
	// replacement strings filled in. A task run on this machine ignores
	// them, since its files are already in place.
	Transfer []string
	Return   []string
	// Meta is copied verbatim into the result.
	Meta json.RawMessage
	// Inputs holds the input the task was made of, in template mode: for
	// each record (a line, or a value of each input source) its values,
	// one per source or column. Empty for a JSON task or a chunk.
	Inputs [][]string
	// Lines, when set, is told each line of the task's outputs as the
	// task writes it, by an executor that can (see LineSink); the result
	// still holds every byte.
	Lines LineSink
	// Err is set when the task could not be read; such a task is never run
	// and its result carries the error.
	Err error
}

// LineSink receives the lines of a running task's outputs (Task.Lines):
// each whole line, its line break included, and a last line without one
// when the output ends. A line longer than MaxLine comes in pieces of
// MaxLine bytes. Line is called from one goroutine per stream, and must
// not keep line past the call; stderr says which stream it is from.
type LineSink interface {
	Line(stderr bool, line []byte)
}

// MaxLine is the longest line a LineSink is given whole.
const MaxLine = 1 << 20

// Chunk is a part of the input, cut at record boundaries, that one task
// reads on its stdin.
type Chunk struct {
	// Path names the file the chunk is read from when the task runs
	// (--pipepart); empty when the chunk was read already (--pipe).
	Path string
	// Offset is where the chunk starts in the input, and Length how many
	// bytes it holds.
	Offset, Length int64
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
	// Started reports whether a process was started, so Duration is
	// meaningful.
	Started  bool
	Duration time.Duration
	// StartedAt is when the process was started, on the pool's clock (for
	// a task run on another host too), so that StartedAt plus Duration is
	// when it ended; zero when Started is not set. With retries, it is the
	// last attempt's.
	StartedAt time.Time
	// Err says why the pool could not run the task, or why it stopped it.
	Err       error
	Signal    string
	TimedOut  bool
	Attempts  int
	Truncated bool
	Meta      json.RawMessage
	// Host names the host that ran the task's last attempt, when tasks run
	// on more than one machine; empty otherwise.
	Host string
	// Usage is what the task's process cost; nil when it did not start, or
	// the platform cannot tell.
	Usage *Usage
	// Limit names the limit that ended the task (LimitCPU, LimitFSize),
	// where that is certain: the process was killed by the signal the
	// limit sends.
	Limit string
}

// NotRun is the result of a task that never started, for the reason err.
func NotRun(t *Task, err error) Result {
	return Result{Seq: t.Seq, Identifier: t.Identifier, ExitCode: ExitNeverStarted, Err: err, Meta: t.Meta}
}

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
	ExitSignalBase    = 128 // plus the signal's number
)

// Reasons for a task that never ran, or was stopped by the pool.
var (
	// ErrCancelled marks tasks stopped or never started because the run
	// was interrupted.
	ErrCancelled = errors.New("cancelled")
	// ErrSkipped marks tasks never started because an earlier task failed
	// under fail-fast.
	ErrSkipped = errors.New("skipped after an earlier failure (fail-fast)")
	// ErrHostLost marks an attempt cut short because the host running it
	// failed or went out of reach: the task may have run there in part, and
	// may run again elsewhere.
	ErrHostLost = errors.New("host lost")
)

// EventKind names a moment in a task's life.
type EventKind string

// The events of a task's life. A task that is attempted has Started, then
// Retrying before each further attempt, then Finished; a task never
// attempted (invalid, skipped, cancelled before it started) has only
// Finished, with Attempt 0. Waiting tells of a task held back from an
// attempt for more than a second, and Requeued of an attempt stopped to
// free memory, to run again without counting as a retry.
const (
	Started  EventKind = "started"
	Retrying EventKind = "retrying"
	Finished EventKind = "finished"
	// Waiting tells, once, of a task that has waited more than a second
	// for room to start in (its "cpus" or "memory", or a gate), before its
	// Started; Resource names what it waits for.
	Waiting  EventKind = "waiting"
	Requeued EventKind = "requeued"
)

// Event is one moment of a task's life, as told to an Observer.
type Event struct {
	Kind EventKind
	Task *Task
	// Attempt is the run of the task the event is about: 1 for Started,
	// the run that failed for Retrying, the last run for Finished (0 when
	// the task was never attempted).
	Attempt int
	// Result is the failed attempt for Retrying (its outputs already
	// released) and the task's result for Finished; nil for Started.
	Result *Result
	// Host names the host the attempt runs on, when tasks run on more than
	// one machine: for Started, the first attempt's; for the others, the
	// Result's.
	Host string
	// Resource names what a Waiting task waits for: ResourceCPUs,
	// ResourceMemory, "memfree", "load", "delay" or "rate"; or what a
	// Requeued attempt was stopped for.
	Resource string
}

// Observer is told of every task's life as it happens. Observe is called
// from many goroutines at once, before the step it tells of goes on: a
// Started event before the task runs, Finished before its result is sent
// on. It must not keep Task or Result past the call, nor change them.
type Observer interface {
	Observe(Event)
}
