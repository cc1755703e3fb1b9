package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/workerpool/workerpool/internal/shorten"
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
	r.Started = true
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
// not start.
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

// process is one run of a task: its program, the captures of its output,
// and whether the pool stopped it.
type process struct {
	path    string   // the program
	argv    []string // its arguments, from the name it was asked for
	attr    os.ProcAttr
	group   group
	outputs []*capture // stdout, then stderr when it is captured
	stdin   *feeder    // nil when the child reads /dev/null
	limits  job.Limits // what it was started with

	proc    *os.Process
	state   *os.ProcessState // once reaped
	waitErr error            // why it could not be reaped (another reaped it)
	stopped atomic.Bool      // the pool stopped it
	exited  atomic.Bool      // it was seen to have exited

	// mu orders the signals of a stop against the reaping: once reaped,
	// the child's pid may be another's, and no timer may signal it.
	mu     sync.Mutex
	reaped bool
	kill   *time.Timer // SIGKILL after the grace period of a stop
}

// prepare sets up the command for t, ready to start: its program, working
// directory, environment, standard input and output captures.
func (l *Local) prepare(t *job.Task) (*process, error) {
	if err := checkDir(t.Dir); err != nil {
		return nil, err
	}
	path, err := l.lookPath(t.Command)
	if err != nil {
		return nil, err
	}
	limits := t.Limits
	if limits.Set() {
		// The trampoline would start even a program that cannot be: ask
		// first, so that such a task fails as it fails without limits.
		if _, err := exec.LookPath(path); err != nil {
			return nil, err
		}
		if err := checkLimits(limits); err != nil {
			return nil, err
		}
	}
	g, err := newGroup()
	if err != nil {
		return nil, err
	}
	argv := make([]string, 1+len(t.Args))
	argv[0] = t.Command
	copy(argv[1:], t.Args)
	p := &process{path: programPath(path, t.Dir), argv: argv, group: g, limits: limits}
	if limits.Set() {
		if err := p.limited(limits, path); err != nil {
			g.release()
			return nil, err
		}
	}
	p.attr.Dir = t.Dir
	p.attr.Env = l.env(t.Env)
	if err := l.connect(p, t); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// stop stops the process for the pool, when its time limit passes or the
// pool's context is done: SIGTERM to its group, then SIGKILL after grace,
// or SIGKILL at once when there is no grace. A process that has already
// exited on its own (the pool itself may have been stopped, by SIGSTOP,
// past the time limit) is left alone: its own status stands.
func (p *process) stop(grace time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped || p.exited.Load() || p.group.gone() {
		return
	}
	p.stopped.Store(true)
	if grace == 0 {
		_ = p.group.kill()
		return
	}
	_ = p.group.terminate()
	p.kill = time.AfterFunc(grace, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.reaped {
			_ = p.group.kill()
		}
	})
}

// connect gives the process its standard input, and captures of its
// output.
func (l *Local) connect(p *process, t *job.Task) error {
	var err error
	files := make([]*os.File, 3)
	p.attr.Files = files
	files[0] = l.devNull
	if t.HasStdin {
		if p.stdin, err = newFeeder(t.Stdin); err != nil {
			return err
		}
		files[0] = p.stdin.r
	}
	if files[1], err = p.capture(l); err != nil {
		return err
	}
	switch l.opts.Stderr {
	case StderrCapture:
		files[2], err = p.capture(l)
	case StderrInherit:
		files[2] = l.inheritTo
	default:
		files[2] = l.devNull
	}
	return err
}

// feeder writes a task's stdin to the child through a pipe. Nothing waits
// for it to be all read: a grandchild may keep the pipe and never read it.
type feeder struct {
	r, w *os.File
	data string
}

func newFeeder(data string) (*feeder, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	return &feeder{r: r, w: w, data: data}, nil
}

// feed writes the data, then closes the pipe so the reader sees its end.
// It returns early, with what is unwritten dropped, when close closes the
// pipe or nobody holds the read end any more.
func (f *feeder) feed() {
	_, _ = io.WriteString(f.w, f.data)
	f.w.Close()
}

func (f *feeder) close() {
	f.r.Close()
	f.w.Close()
}

// dirError is a working directory a task cannot start in.
type dirError struct {
	dir string
	err error
}

func (e *dirError) Error() string { return fmt.Sprintf("dir %q: %v", e.dir, e.err) }

// checkDir reports why dir cannot be a working directory, if it cannot:
// the child's own chdir failure would look like a missing command.
func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	info, err := os.Stat(dir)
	if err == nil && !info.IsDir() {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return &dirError{dir, shorten.Error(err)}
	}
	return nil
}

// capture adds a capture of one output stream and returns its write end.
func (p *process) capture(l *Local) (*os.File, error) {
	c, err := l.newCapture()
	if err != nil {
		return nil, err
	}
	p.outputs = append(p.outputs, c)
	return c.w, nil
}

// start starts the process in a group of its own and begins collecting its
// output.
func (p *process) start() error {
	var err error
	p.proc, err = p.group.start(p.path, p.argv, &p.attr)
	for _, c := range p.outputs {
		c.w.Close() // the child holds its own copy
	}
	if p.stdin != nil {
		p.stdin.r.Close()
	}
	if err != nil {
		return err
	}
	for _, c := range p.outputs {
		go c.collect()
	}
	if p.stdin != nil {
		go p.stdin.feed()
	}
	return nil
}

// wait reaps the process, which has exited when exited is set, then waits
// for its output to end. What is left of its group gets SIGTERM and, after
// grace, SIGKILL; the pipes are then abandoned. When the task was already
// being stopped, its grace period is spent and the group gets SIGKILL at
// once.
func (p *process) wait(exited bool, grace time.Duration) {
	p.exited.Store(exited)
	if exited {
		p.endStop()
	}
	p.state, p.waitErr = p.proc.Wait()
	if !exited {
		p.exited.Store(true)
		p.endStop()
	}
	if p.stopped.Load() {
		_ = p.group.kill()
	} else {
		_ = p.group.terminate()
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for _, c := range p.outputs {
		select {
		case <-c.done:
			continue
		case <-timer.C:
		}
		_ = p.group.kill()
		for _, c := range p.outputs {
			_ = c.r.SetReadDeadline(time.Now())
		}
		for _, c := range p.outputs {
			<-c.done
		}
		return
	}
}

// endStop keeps a stop from signalling the process from now on; it has
// exited, and is (about to be) reaped.
func (p *process) endStop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reaped = true
	if p.kill != nil {
		p.kill.Stop()
	}
}

// outcome fills r with what the process left: its output, exit code and
// signal. Output that could not be kept (its spill file could not be made
// or written) is an error of the task, which then fails with the child's
// own exit code: it is never cut silently.
func (p *process) outcome(r *job.Result) {
	r.Stdout, r.Truncated, r.Err = p.outputs[0].output("stdout")
	if len(p.outputs) > 1 {
		var cut bool
		var err error
		r.Stderr, cut, err = p.outputs[1].output("stderr")
		r.Truncated = r.Truncated || cut
		if r.Err == nil {
			r.Err = err
		}
	}
	if p.state == nil {
		r.ExitCode, r.Err = job.ExitNeverStarted, fmt.Errorf("cannot wait for the process: %w", p.waitErr)
		return
	}
	r.ExitCode, r.Signal = exitStatus(p.state)
	r.Usage = p.group.usage(p.state)
	r.Limit = limitOf(p.limits, r.Signal, r.Usage)
}

// close releases the pipes and the group.
func (p *process) close() {
	for _, c := range p.outputs {
		c.close()
	}
	if p.stdin != nil {
		p.stdin.close()
	}
	p.group.release()
}

// startFailure maps an error from looking up or starting a command to an
// exit code and a message.
func startFailure(command string, err error) (int, error) {
	var pathErr *fs.PathError
	var dirErr *dirError
	switch {
	case errors.As(err, &dirErr):
	case errors.Is(err, exec.ErrNotFound), errors.As(err, &pathErr) && errors.Is(err, fs.ErrNotExist):
		return job.ExitNotFound, fmt.Errorf("command not found: %s", command)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EISDIR), errors.Is(err, exec.ErrDot):
		return job.ExitNotExecutable, fmt.Errorf("command not executable: %s: %w", command, shorten.Error(err))
	}
	return job.ExitNeverStarted, fmt.Errorf("cannot start %s: %w", command, err)
}

// Resolve returns the program that t would run, as Execute would run it,
// or why it cannot run: its directory is missing, its command is not found
// or not executable, or its limits cannot be set. A relative path is
// relative to the task's directory.
func (l *Local) Resolve(t *job.Task) (string, error) {
	if err := checkDir(t.Dir); err != nil {
		_, err = startFailure(t.Command, err)
		return "", err
	}
	path, err := l.lookPath(t.Command)
	if err == nil && strings.ContainsRune(t.Command, '/') {
		if t.Dir != "" && !filepath.IsAbs(path) {
			path = filepath.Join(t.Dir, path)
		}
		_, err = exec.LookPath(path) // checks that it exists and is executable
	}
	if err == nil && t.Limits.Set() {
		err = checkLimits(t.Limits)
	}
	if err != nil {
		_, err = startFailure(t.Command, err)
	}
	return path, err
}

// lookPath resolves a command name in PATH once per name; a name with a
// slash is used as it is.
func (l *Local) lookPath(command string) (string, error) {
	if command == "" {
		return "", exec.ErrNotFound
	}
	if strings.ContainsRune(command, '/') {
		return command, nil
	}
	if p, ok := l.paths.Load(command); ok {
		return p.(string), nil
	}
	p, err := exec.LookPath(command)
	if err != nil {
		return "", err
	}
	l.paths.Store(command, p)
	return p, nil
}

// env returns the child's environment: the pool's, read once, with the
// variables of extra in place of the pool's of the same names.
func (l *Local) env(extra map[string]string) []string {
	if len(extra) == 0 {
		return l.environ
	}
	env := make([]string, 0, len(l.environ)+len(extra))
	for _, kv := range l.environ {
		if k, _, _ := strings.Cut(kv, "="); k == "" || !hasEnvKey(extra, k) {
			env = append(env, kv) // a key "" is Windows' "=C:=C:\dir"
		}
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}
