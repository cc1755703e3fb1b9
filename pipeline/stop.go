package pipeline

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/workerpool/workerpool/job"
)

// stopper is the run's one way to stop: stop, with a cause. It stops in
// two degrees, each a context cancelled once. The intake closes on any
// cause: the input is read no further and no task starts; the tasks already
// read are answered with job.ErrSkipped after a fail-fast stop, with
// job.ErrCancelled otherwise. Any cause but job.ErrSkipped also aborts the
// running tasks, and is the cause the run ends with (see Error).
type stopper struct {
	// intake is done once the intake is closed; tasks is done once the
	// run is aborted, and its cause is the first reason.
	intake, tasks      context.Context
	closeIntake, abort context.CancelCauseFunc
	unwatch            func() bool
}

// newStopper returns a stopper that stops, too, when parent is done, with
// parent's cause. Its release must be called at the end of the run.
func newStopper(parent context.Context) *stopper {
	s := &stopper{}
	s.tasks, s.abort = context.WithCancelCause(context.WithoutCancel(parent))
	s.intake, s.closeIntake = context.WithCancelCause(s.tasks)
	s.unwatch = context.AfterFunc(parent, func() { s.stop(context.Cause(parent)) })
	return s
}

// stop stops the run for cause; it is safe to call from any goroutine, any
// number of times. A later abort still stops the tasks that a fail-fast
// stop let run on.
func (s *stopper) stop(cause error) {
	if errors.Is(cause, job.ErrSkipped) {
		s.closeIntake(job.ErrSkipped)
		return
	}
	s.closeIntake(job.ErrCancelled)
	s.abort(cause)
}

// cause reports why the run was aborted; nil if it was not.
func (s *stopper) cause() error { return context.Cause(s.tasks) }

// release frees what the stopper holds; it does not stop the run.
func (s *stopper) release() {
	s.unwatch()
	s.abort(nil)
}

// Exit statuses of a run.
const (
	ExitOK          = 0   // every task ran and exited 0
	ExitFailed      = 1   // at least one task failed
	ExitUsage       = 2   // bad flag, unreadable input, or output that cannot be written
	ExitHangup      = 129 // SIGHUP
	ExitInterrupted = 130 // SIGINT
	ExitBrokenPipe  = 141 // the reader of the results went away
	ExitTerminated  = 143 // SIGTERM
)

// Error is a failure of the run itself, not of a task, with the exit status
// it calls for.
type Error struct {
	Code int
	Err  error
	// Quiet marks an end that needs no message: a signal, or a reader
	// that went away.
	Quiet bool
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitCode is the exit status the error calls for.
func (e *Error) ExitCode() int { return e.Code }

// UsageError is an error in what the run was asked to do: exit status 2.
func UsageError(err error) error { return &Error{Code: ExitUsage, Err: err} }

// writeError is the cause of a run stopped because its output cannot be
// written.
type writeError struct{ err error }

func (e *writeError) Error() string { return "cannot write results: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// errReaderGone is the cause of a run stopped because nobody reads the
// results any more.
var errReaderGone = errors.New("the reader of the results went away")

// SignalContext returns a context cancelled on SIGHUP, SIGINT or SIGTERM,
// with a cause that makes Run end with the signal's exit status (129, 130
// or 143).
// SIGPIPE is caught too, so that writing to a closed pipe fails with EPIPE
// instead of killing the pool. stop releases the signals.
func SignalContext(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	go func() {
		for sig := range sigs {
			if sig != syscall.SIGPIPE {
				cancel(signalError{sig.(syscall.Signal)})
			}
		}
	}()
	return ctx, func() { signal.Stop(sigs); cancel(nil) }
}

// signalError is the cause of a run stopped by a signal.
type signalError struct{ sig syscall.Signal }

func (e signalError) Error() string { return "received " + e.sig.String() }

// abortError is the error a run aborted for cause ends with.
func abortError(cause error) error {
	var sig signalError
	switch {
	case errors.As(cause, &sig):
		return &Error{Code: 128 + int(sig.sig), Err: cause, Quiet: true}
	case errors.Is(cause, errReaderGone), errors.Is(cause, syscall.EPIPE):
		return &Error{Code: ExitBrokenPipe, Err: errReaderGone, Quiet: true}
	case errors.Is(cause, context.Canceled):
		return &Error{Code: ExitInterrupted, Err: errors.New("interrupted"), Quiet: true}
	}
	return &Error{Code: ExitUsage, Err: cause}
}
