package pipeline

import (
	"context"
	"errors"
	"syscall"

	"github.com/workerpool/workerpool/job"
)

// stopper is the run's one way to stop: stop, with a cause. It stops in
// two degrees, each a context cancelled once. The intake closes on any
// cause: the input is read no further and no task starts; the tasks already
// read are answered with the halt (a *haltError, which is a
// job.ErrSkipped) after a halt, with job.ErrCancelled otherwise. Any cause
// but a halt also aborts the running tasks, and is the cause the run ends
// with (see Error); a halt "now" aborts them too, but the run ends well.
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
// stop let run on. A halt (*haltError) closes the intake with itself as
// the cause, and aborts the running tasks too when it halts now.
func (s *stopper) stop(cause error) {
	if errors.Is(cause, job.ErrSkipped) {
		s.closeIntake(cause)
		var h *haltError
		if errors.As(cause, &h) && h.halt.When == HaltNow {
			s.abort(cause)
		}
		return
	}
	s.closeIntake(job.ErrCancelled)
	s.abort(cause)
}

// cause reports why the run was aborted; nil if it was not, or if it was
// by a halt, which is no failure of the run.
func (s *stopper) cause() error {
	if cause := context.Cause(s.tasks); !errors.Is(cause, job.ErrSkipped) {
		return cause
	}
	return nil
}

// halted returns the halt that stopped the run, or nil.
func (s *stopper) halted() *haltError {
	var h *haltError
	if errors.As(context.Cause(s.intake), &h) {
		return h
	}
	return nil
}

// release frees what the stopper holds; it does not stop the run.
func (s *stopper) release() {
	s.unwatch()
	s.abort(nil)
}

// writeError is the cause of a run stopped because its output cannot be
// written.
type writeError struct{ err error }

func (e *writeError) Error() string { return "cannot write results: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// ErrReaderGone ends a run stopped because nobody reads the results any
// more: a write to them failed with EPIPE, or the reader closed its end.
var ErrReaderGone = errors.New("the reader of the results went away")

// abortError is the error a run aborted for cause ends with: the cause
// itself, but for a write that found its reader gone, which is
// ErrReaderGone.
func abortError(cause error) error {
	if errors.Is(cause, syscall.EPIPE) {
		return ErrReaderGone
	}
	return cause
}
