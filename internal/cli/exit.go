package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/workerpool/workerpool/pipeline"
)

// Exit statuses of the program; --help lists them.
const (
	ExitOK          = 0   // every task ran and exited 0
	ExitFailed      = 1   // at least one task failed
	ExitUsage       = 2   // bad flag, unreadable input, or output that cannot be written
	ExitHangup      = 129 // SIGHUP
	ExitInterrupted = 130 // SIGINT
	ExitBrokenPipe  = 141 // the reader of the results went away
	ExitTerminated  = 143 // SIGTERM
)

// Error is how the program ends when it does not end well: its exit status
// and, unless Quiet, the message it prints.
type Error struct {
	Code int
	Err  error
	// Quiet marks an end that needs no message: a signal, a reader that
	// went away, or failed tasks, which the results tell of.
	Quiet bool
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitCode is the exit status the error calls for.
func (e *Error) ExitCode() int { return e.Code }

// usageError is an error in what the program was asked to do: exit status
// 2.
func usageError(err error) error { return &Error{Code: ExitUsage, Err: err} }

// errTasksFailed ends a run in which some task failed; the results say
// which.
var errTasksFailed = &Error{Code: ExitFailed, Err: errors.New("a task failed"), Quiet: true}

// asError is the end err calls for. A run stopped by a signal (see
// signalContext) ends with 128 plus its number, and one whose context was
// cancelled otherwise as if by SIGINT; one whose reader went away with
// 141, whatever it was writing: results, --help, --completion's code, a
// report; any other failure of the run with 2, and its message.
func asError(err error) *Error {
	var e *Error
	var sig signalError
	switch {
	case errors.Is(err, pipeline.ErrReaderGone), errors.Is(err, syscall.EPIPE):
		return &Error{Code: ExitBrokenPipe, Err: err, Quiet: true}
	case errors.As(err, &e):
		return e
	case errors.As(err, &sig):
		return &Error{Code: 128 + int(sig.sig), Err: err, Quiet: true}
	case errors.Is(err, context.Canceled):
		return &Error{Code: ExitInterrupted, Err: errors.New("interrupted"), Quiet: true}
	}
	return &Error{Code: ExitUsage, Err: err}
}

// exitCode is the one place that reports how the program ends: it prints
// err, unless it is quiet, and returns the exit status it calls for.
func exitCode(stderr io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	e := asError(err)
	if !e.Quiet {
		fmt.Fprintf(stderr, "workerpool: %v\n", e.Err)
	}
	return e.Code
}

// signalContext returns a context cancelled on SIGHUP, SIGINT or SIGTERM,
// with a cause that ends the program with the signal's exit status (129,
// 130 or 143). SIGPIPE is caught too, so that writing to a closed pipe
// fails with EPIPE instead of killing the pool. stop releases the signals.
func signalContext(parent context.Context) (ctx context.Context, stop func()) {
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
