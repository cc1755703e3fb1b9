package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/workerpool/workerpool/internal/spool"
	"github.com/workerpool/workerpool/job"
)

// StderrMode says what happens to a child's standard error.
type StderrMode int

// The stderr modes.
const (
	StderrCapture StderrMode = iota // into Result.Stderr
	StderrInherit                   // passed through to the pool's stderr
	StderrDiscard                   // dropped
)

// UnmarshalText reads a mode by its name: capture, inherit or discard.
func (m *StderrMode) UnmarshalText(text []byte) error {
	i := slices.Index(stderrModes, string(text))
	if i < 0 {
		return fmt.Errorf("%q is not a stderr mode: use %s", text, strings.Join(stderrModes, ", "))
	}
	*m = StderrMode(i)
	return nil
}

func (m StderrMode) String() string { return stderrModes[m] }

var stderrModes = []string{"capture", "inherit", "discard"}

// ProcessOptions say how a task's process is run and its output kept,
// wherever it runs: by Local on this machine, and by the agents that run
// tasks on other hosts (package remote), which are given the same.
type ProcessOptions struct {
	// Grace is the time between SIGTERM and SIGKILL when a task is stopped.
	Grace time.Duration
	// MaxOutput caps the bytes captured per stream; zero means no cap.
	MaxOutput int64
	// Stderr says what becomes of a task's standard error.
	Stderr StderrMode
	// InheritTo receives the tasks' stderr in StderrInherit mode. Local
	// gives it to its children when it is an *os.File, and os.Stderr
	// otherwise (nil included).
	InheritTo io.Writer
	// TempDir holds the outputs too big to keep in memory; empty means
	// os.TempDir().
	TempDir string
	// Nice, when not zero, is the niceness every task runs at (see
	// job.Limits.Nice); not on Windows.
	Nice int
}

// LocalOptions configure a Local executor. A task's time limit and limits
// come with the task (see job.Defaults).
type LocalOptions struct {
	ProcessOptions
	// SpillAfter is how many bytes of a stream are kept in memory; the
	// rest go to a temporary file. Zero means DefaultSpillAfter.
	SpillAfter int
	// EndOrphans makes the process, on Linux, the child subreaper of the
	// tasks' descendants, and Close kill whatever they left behind outside
	// their process groups (setsid, double forks). It acts on the whole
	// process: use it where the executor's tasks are the process's only
	// children, and Close after every Execute has returned.
	EndOrphans bool
}

// DefaultSpillAfter is how much of each captured stream stays in memory
// when LocalOptions say nothing (see spool.DefaultSpillAfter).
const DefaultSpillAfter = spool.DefaultSpillAfter

// Local runs tasks as child processes on this machine, each in a process
// group of its own (a Job Object on Windows).
type Local struct {
	opts      LocalOptions
	devNull   *os.File
	inheritTo *os.File // the children's stderr in StderrInherit mode
	environ   []string // the pool's, read once: every child starts with it

	paths    sync.Map     // command name -> resolved path (string)
	waiting  atomic.Int64 // children being waited for on a thread of their own
	children atomic.Int64 // children being prepared, or started and not yet waited for

	// room holds a unit for each child being prepared or running; its
	// units beyond most are taken for good once the system runs out
	// (launch), and tasks then wait their turn in order.
	room    *semaphore.Weighted
	most    atomic.Int64 // children at most at once; 0 for no bound
	lowerMu sync.Mutex   // one lowering of most at a time
	closing context.Context
	close   context.CancelFunc
}

// roomSize is the room of an executor whose system has not run out.
const roomSize = math.MaxInt32

// spareProcesses is how many processes of the user's limit the executor
// leaves for the pool's own threads once that limit has been met.
const spareProcesses = 16

// lowerMost bounds the children at once to n (at least 1), unless a lower
// bound holds already. The units of room above n are taken for good: that
// waits, and every later start with it, until no more than n children are
// left.
func (l *Local) lowerMost(n int64) {
	n = max(n, 1)
	l.lowerMu.Lock()
	defer l.lowerMu.Unlock()
	most := l.most.Load()
	if most == 0 {
		most = roomSize
	}
	if n >= most {
		return
	}
	l.most.Store(n)
	go func() { _ = l.room.Acquire(l.closing, most-n) }()
}

// free gives back the room of a child that has been waited for, or that
// did not start.
func (l *Local) free() {
	l.children.Add(-1)
	l.room.Release(1)
}

// threadWaits is how many children at most are waited for on a thread
// each, which wakes soonest after the exit; the others are waited for in
// the network poller where the platform can (see group.awaitExit), so that
// a wide pool does not need a thread per waiting child.
const threadWaits = 4

// wait waits for p's process to exit and its output to end (process.wait),
// on a thread of its own while few others are and no process limit has
// been met.
func (l *Local) wait(p *process) {
	onThread := false
	if l.most.Load() == 0 { // no process limit met: a thread is to be had
		onThread = l.waiting.Add(1) <= threadWaits
		if !onThread {
			l.waiting.Add(-1)
		}
	}
	exited := p.group.awaitExit(onThread)
	if onThread {
		l.waiting.Add(-1)
	}
	p.wait(exited, l.opts.Grace)
}

// allowThreads lifts the Go runtime's bound on OS threads (10,000, past
// which it aborts) above what the widest pool can need. Where a child's
// exit cannot be awaited in the network poller (no pidfd: macOS, FreeBSD,
// Windows, Linux before 5.3), each waiting child holds a thread, and a
// pool of MaxWorkers needs that many; the system's own limits still hold,
// and a fork that meets them is handled (see launch).
var allowThreads = sync.OnceFunc(func() {
	if old := debug.SetMaxThreads(MaxWorkers + 1000); old > MaxWorkers+1000 {
		debug.SetMaxThreads(old)
	}
})

// NewLocal returns a Local executor; Close releases what it holds.
func NewLocal(opts LocalOptions) (*Local, error) {
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	inheritTo, ok := opts.InheritTo.(*os.File)
	if !ok || inheritTo == nil {
		inheritTo = os.Stderr
	}
	if opts.SpillAfter <= 0 {
		opts.SpillAfter = DefaultSpillAfter
	}
	if opts.EndOrphans {
		if err := adoptOrphans(); err != nil {
			devNull.Close()
			return nil, err
		}
	}
	reserveThreads(spareProcesses)
	allowThreads()
	l := &Local{opts: opts, devNull: devNull, inheritTo: inheritTo, environ: os.Environ(), room: semaphore.NewWeighted(roomSize)}
	l.closing, l.close = context.WithCancel(context.Background())
	return l, nil
}

// Close releases the executor's resources and, with EndOrphans, ends the
// processes the tasks left behind.
func (l *Local) Close() error {
	l.close()
	if l.opts.EndOrphans {
		endOrphans()
	}
	return l.devNull.Close()
}

// Execute runs t and waits for it and for its output. When ctx is done or
// the task's time limit passes, the task's process group gets SIGTERM, then
// SIGKILL after the grace period. When the child exits, whatever it left
// running in its group is stopped the same way, so a grandchild holding the
// output pipe cannot hold the task open.
func (l *Local) Execute(ctx context.Context, t *job.Task) job.Result {
	r := job.Result{Seq: t.Seq, Identifier: t.Identifier, Meta: t.Meta}
	limit := t.Timeout
	runCtx := ctx
	if limit > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	p, start, err := l.launch(runCtx, t)
	if err != nil {
		if p != nil {
			p.close()
		}
		l.notStarted(&r, ctx, runCtx, t.Command, limit, err)
		return r
	}
	defer p.close()
	r.Started, r.StartedAt = true, start
	// Stopping the task (its time limit, or the pool's ctx) costs nothing
	// until it happens: no goroutine waits for it.
	unwatch := context.AfterFunc(runCtx, func() { p.stop(l.opts.Grace) })
	l.wait(p)
	unwatch()
	l.free()
	r.Duration = time.Since(start)
	p.outcome(&r)
	if p.stopped.Load() {
		if ctx.Err() != nil {
			r.Err = job.ErrCancelled
		} else {
			r.TimedOut, r.ExitCode, r.Err = true, job.ExitTimedOut, timedOut(limit)
		}
	}
	return r
}

// launch prepares and starts t's process. When the system is out, for
// the moment, of what running tasks hold (processes: EAGAIN from fork;
// file descriptors: EMFILE or ENFILE, while some child runs), it tries
// again after a pause, doubling from 10 ms up to 1 s, until ctx is done. A
// nil process means it could not be prepared; otherwise err is why it did
// not start, or start is when it started.
//
// Once a start has failed so, the executor keeps fewer children at once
// than it had then, for the rest of its life (see lessThan): the process
// limit counts threads too, and the Go runtime cannot do without a new
// thread when it needs one; the pool's own files need descriptors too.
func (l *Local) launch(ctx context.Context, t *job.Task) (p *process, start time.Time, err error) {
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		if err := l.room.Acquire(ctx, 1); err != nil {
			return nil, start, err
		}
		l.children.Add(1)
		p, err = l.prepare(t)
		switch {
		case err != nil:
			l.free()
			if !l.outOfRoom(err) {
				return nil, start, err
			}
		case ctx.Err() != nil:
			l.free()
			return p, start, ctx.Err()
		default:
			start = time.Now()
			if err = p.start(); err == nil {
				return p, start, nil
			}
			l.free()
			if !l.outOfRoom(err) {
				return p, start, err
			}
			p.close()
		}
		l.lowerMost(lessThan(l.children.Load(), err))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, start, ctx.Err()
		}
	}
}

// lessThan is how many children at most the executor keeps once it had
// others when err said the system had run out: spareProcesses fewer for
// processes, an eighth fewer for file descriptors (the pool's own files
// need some too: spill files, stdin pipes).
func lessThan(others int64, err error) int64 {
	if errors.Is(err, syscall.EAGAIN) {
		return others - spareProcesses
	}
	return others - max(1, others/8)
}

// outOfRoom reports whether err says that a task cannot start until
// running ones end: the system is out of processes (EAGAIN), or of file
// descriptors (EMFILE, ENFILE) while some child of the executor holds
// some.
func (l *Local) outOfRoom(err error) bool {
	if errors.Is(err, syscall.EAGAIN) {
		return true
	}
	return (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) && l.children.Load() > 0
}

// notStarted fills r for a task whose process could not be started: the
// time limit ran out first, the pool was stopped, or the start failed.
func (l *Local) notStarted(r *job.Result, ctx, runCtx context.Context, command string, limit time.Duration, err error) {
	switch {
	case ctx.Err() != nil:
		r.ExitCode, r.Err = startFailure(command, job.ErrCancelled)
	case runCtx.Err() != nil:
		r.ExitCode, r.TimedOut, r.Err = job.ExitTimedOut, true, timedOut(limit)
	default:
		r.ExitCode, r.Err = startFailure(command, err)
	}
}

func timedOut(limit time.Duration) error { return fmt.Errorf("timed out after %s", limit) }
