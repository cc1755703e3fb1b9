package dispatch

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
)

// Options configure a Pool.
type Options struct {
	// Workers is the number of tasks run at once; 0 means one per CPU core.
	Workers int
	// Window, when positive, bounds how far ahead of the oldest unfinished
	// task the pool may start tasks, so that a consumer restoring input
	// order never holds more than Window results. Zero means unbounded.
	Window int
	// Retries is how many more times a failed task is run.
	Retries int
	// FailFast stops the pool from starting tasks after the first failure.
	FailFast bool
	// Recorded, when set, reports tasks that need not run because an
	// earlier run recorded their results; they get a Recorded result.
	Recorded func(*Task) bool
	// Events makes the pool also send an event before each attempt of a
	// task: EventStarted, or EventRetrying after a failed attempt.
	Events bool
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
}

// Pool runs tasks on a fixed number of executors.
type Pool struct {
	exec   Executor
	opts   Options
	window *window
	log    *slog.Logger

	stopOnce sync.Once
	stopped  chan struct{}
	cause    error // set before stopped is closed
}

// NewPool returns a pool that runs tasks with exec.
func NewPool(exec Executor, opts Options) *Pool {
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{exec: exec, opts: opts, log: log, stopped: make(chan struct{})}
	if opts.Window > 0 {
		p.window = newWindow(opts.Window)
	}
	return p
}

// Workers reports how many tasks the pool runs at once.
func (p *Pool) Workers() int { return p.opts.Workers }

// Stop makes the pool start no further task: every task received after it,
// or still waiting for an executor, gets a result with cause as its error.
// Running tasks go on unless the context given to Run is cancelled. Only the
// first call's cause is kept; Stop is safe to call from any goroutine.
func (p *Pool) Stop(cause error) {
	p.stopOnce.Do(func() {
		p.cause = cause
		close(p.stopped)
	})
}

// Stopped is closed when Stop has been called; a source of tasks should stop
// reading when it is.
func (p *Pool) Stopped() <-chan struct{} { return p.stopped }

func (p *Pool) stopCause() error {
	select {
	case <-p.stopped:
		return p.cause
	default:
		return nil
	}
}

// Run receives tasks until the channel is closed and sends exactly one
// result for each on the returned channel, which it closes after the last
// one; with Options.Events, events for a task come before its result. When ctx is done the pool stops (see Stop) and the running tasks are
// stopped; their results still follow. The caller must receive every result
// until the channel is closed, and must keep tasks flowing until it closes
// them.
func (p *Pool) Run(ctx context.Context, tasks <-chan Task) <-chan Result {
	out := make(chan Result)
	jobs := make(chan *Task)
	stopOnCancel := context.AfterFunc(ctx, func() { p.Stop(ErrCancelled) })
	var wg sync.WaitGroup
	for range p.opts.Workers {
		wg.Go(func() { p.work(ctx, jobs, out) })
	}
	go func() {
		p.feed(tasks, jobs, out)
		close(jobs)
		wg.Wait()
		stopOnCancel()
		close(out)
	}()
	return out
}

// feed hands each task to a free worker, or answers it itself when the task
// cannot run: it is invalid, or the pool has stopped.
func (p *Pool) feed(tasks <-chan Task, jobs chan<- *Task, out chan<- Result) {
	for t := range tasks {
		p.window.admit(p.stopped, t.Seq)
		if t.Err != nil {
			p.log.Warn("invalid task", "seq", t.Seq, "where", t.Where, "error", t.Err)
			p.emit(out, notRun(&t, t.Err))
			continue
		}
		if p.opts.Recorded != nil && p.opts.Recorded(&t) {
			p.log.Debug("already recorded", "seq", t.Seq, "identifier", t.Identifier)
			p.emit(out, Result{Seq: t.Seq, Identifier: t.Identifier, Recorded: true})
			continue
		}
		if cause := p.stopCause(); cause != nil {
			p.emit(out, notRun(&t, cause))
			continue
		}
		select {
		case jobs <- &t:
		case <-p.stopped:
			p.emit(out, notRun(&t, p.cause))
		}
	}
}

func (p *Pool) work(ctx context.Context, jobs <-chan *Task, out chan<- Result) {
	for t := range jobs {
		if ctx.Err() != nil {
			p.Stop(ErrCancelled)
		}
		if cause := p.stopCause(); cause != nil {
			p.emit(out, notRun(t, cause))
			continue
		}
		r := p.attempt(ctx, t, out)
		if r.Failed() && p.opts.FailFast {
			p.Stop(ErrSkipped)
		}
		p.emit(out, r)
	}
}

// attempt runs t, again up to Retries more times while it fails in a way
// that another run might change.
func (p *Pool) attempt(ctx context.Context, t *Task, out chan<- Result) Result {
	p.log.Debug("task started", "seq", t.Seq, "identifier", t.Identifier, "command", t.Command, "args", t.Args)
	p.notify(out, Result{Seq: t.Seq, Identifier: t.Identifier, Event: EventStarted, Attempts: 1, Meta: t.Meta})
	for n := 1; ; n++ {
		r := p.exec.Execute(ctx, t)
		r.Attempts = n
		if !r.Failed() || n > p.opts.Retries || !retryable(&r) || ctx.Err() != nil || p.stopCause() != nil {
			p.logResult(&r)
			return r
		}
		p.log.Info("task retrying", "seq", t.Seq, "identifier", t.Identifier, "attempt", n+1, "exit_code", r.ExitCode, "error", r.Err)
		// The failed attempt's output is not reported: release it.
		r.Close()
		r.Stdout, r.Stderr, r.Event = Output{}, Output{}, EventRetrying
		p.notify(out, r)
	}
}

// notify sends an event when events are asked for.
func (p *Pool) notify(out chan<- Result, ev Result) {
	if p.opts.Events {
		out <- ev
	}
}

// retryable reports whether running the task again could change r: a task
// whose command was not found or could not be executed fails the same way.
func retryable(r *Result) bool {
	return r.Started
}

func (p *Pool) logResult(r *Result) {
	attrs := []any{"seq", r.Seq, "identifier", r.Identifier, "exit_code", r.ExitCode, "duration", r.Duration}
	switch {
	case r.TimedOut:
		p.log.Warn("task timed out", append(attrs, "signal", r.Signal)...)
	case r.Signal != "":
		p.log.Warn("task killed", append(attrs, "signal", r.Signal, "error", r.Err)...)
	case r.Err != nil:
		p.log.Warn("task failed", append(attrs, "error", r.Err)...)
	case r.ExitCode != 0:
		p.log.Info("task failed", attrs...)
	default:
		p.log.Debug("task finished", attrs...)
	}
}

// emit sends r and lets the window move past it.
func (p *Pool) emit(out chan<- Result, r Result) {
	p.window.finish(r.Seq)
	out <- r
}

// notRun is the result of a task that never started.
func notRun(t *Task, err error) Result {
	return Result{Seq: t.Seq, Identifier: t.Identifier, ExitCode: ExitNeverStarted, Err: err, Meta: t.Meta}
}
