// Package dispatchtest provides a scripted dispatch.Executor for the tests
// of the packages that run tasks (the pool, the pipeline, the remote
// cluster), in the manner of net/http/httptest: it starts no process, and
// each task's command says what becomes of it.
package dispatchtest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workerpool/workerpool/job"
)

// Executor runs tasks without processes. A task's command says what
// happens:
//
//   - "fail" exits 1;
//   - "fail-once" exits 1 on its first attempt, and 0 after;
//   - "fail-second" exits 1 once another task has started;
//   - "missing" does not start: exit 127, "command not found";
//   - "echo" writes its arguments, joined by spaces, to stdout;
//   - "sleep" takes 5 ms;
//   - "block" waits until Release is called, or until its context is
//     done, when it is cancelled (exit 143, job.ErrCancelled);
//   - any other command exits 0.
//
// Every result has the task's Seq, Identifier and Meta. An Executor is
// safe for use by many goroutines at once; its zero value is not, use New.
type Executor struct {
	started atomic.Int64
	running atomic.Int64
	peak    atomic.Int64
	calls   sync.Map // Seq -> *atomic.Int64
	release chan struct{}
	once    sync.Once
}

// New returns an Executor whose "block" tasks wait for Release.
func New() *Executor { return &Executor{release: make(chan struct{})} }

// Execute runs t as its command says.
func (e *Executor) Execute(ctx context.Context, t *job.Task) job.Result {
	e.started.Add(1)
	n := e.running.Add(1)
	defer e.running.Add(-1)
	for p := e.peak.Load(); n > p && !e.peak.CompareAndSwap(p, n); p = e.peak.Load() {
	}
	c, _ := e.calls.LoadOrStore(t.Seq, new(atomic.Int64))
	attempt := c.(*atomic.Int64).Add(1)
	r := job.Result{Seq: t.Seq, Identifier: t.Identifier, Meta: t.Meta, Started: true}
	switch t.Command {
	case "fail":
		r.ExitCode = 1
	case "fail-once":
		if attempt == 1 {
			r.ExitCode = 1
		}
	case "fail-second":
		for e.started.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		r.ExitCode = 1
	case "missing":
		r.ExitCode, r.Started, r.Err = job.ExitNotFound, false, errors.New("command not found")
	case "echo":
		r.Stdout = job.BytesOutput([]byte(strings.Join(t.Args, " ")))
	case "sleep":
		time.Sleep(5 * time.Millisecond)
	case "block":
		select {
		case <-e.release:
		case <-ctx.Done():
			r.ExitCode, r.Err = 143, job.ErrCancelled
		}
	}
	return r
}

// Release lets every "block" task go on, those to come included.
func (e *Executor) Release() { e.once.Do(func() { close(e.release) }) }

// Started is how many attempts have started, of every task.
func (e *Executor) Started() int64 { return e.started.Load() }

// Peak is the most attempts that ran at once.
func (e *Executor) Peak() int64 { return e.peak.Load() }

// Attempts is how many times the task numbered seq was run.
func (e *Executor) Attempts(seq int64) int64 {
	c, ok := e.calls.Load(seq)
	if !ok {
		return 0
	}
	return c.(*atomic.Int64).Load()
}
