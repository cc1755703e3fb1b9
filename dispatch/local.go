package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// StderrMode says what happens to a child's standard error.
type StderrMode int

// The stderr modes.
const (
	StderrCapture StderrMode = iota // into Result.Stderr
	StderrInherit                   // passed through to the pool's stderr
	StderrDiscard                   // dropped
)

// LocalOptions configure a Local executor.
type LocalOptions struct {
	// Timeout limits each task that has none of its own; zero means none.
	Timeout time.Duration
	// Grace is the time between SIGTERM and SIGKILL when a task is stopped.
	Grace time.Duration
	// MaxOutput caps the bytes captured per stream; zero means no cap.
	MaxOutput int64
	// SpillAfter is how many bytes of a stream are kept in memory; the
	// rest go to a temporary file. Zero means DefaultSpillAfter.
	SpillAfter int
	// TempDir holds the spill files; empty means os.TempDir().
	TempDir string
	Stderr  StderrMode
	// InheritTo receives the children's stderr in StderrInherit mode.
	InheritTo *os.File
}

// DefaultSpillAfter is how much of each captured stream stays in memory.
const DefaultSpillAfter = 1 << 20

// Local runs tasks as child processes on this machine, each in its own
// process group.
type Local struct {
	opts    LocalOptions
	devNull *os.File
	environ []string

	paths sync.Map // command name -> resolved path (string)
}

// NewLocal returns a Local executor; Close releases what it holds.
func NewLocal(opts LocalOptions) (*Local, error) {
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	if opts.InheritTo == nil {
		opts.InheritTo = os.Stderr
	}
	if opts.SpillAfter <= 0 {
		opts.SpillAfter = DefaultSpillAfter
	}
	return &Local{opts: opts, devNull: devNull, environ: os.Environ()}, nil
}

// Close releases the executor's resources.
func (l *Local) Close() error { return l.devNull.Close() }

// Execute runs t and waits for it and for its output. When ctx is done or
// the task's time limit passes, the task's process group gets SIGTERM, then
// SIGKILL after the grace period. When the child exits, whatever it left
// running in its group is stopped the same way, so a grandchild holding the
// output pipe cannot hold the task open.
func (l *Local) Execute(ctx context.Context, t *Task) Result {
	r := Result{Seq: t.Seq, Identifier: t.Identifier, Meta: t.Meta, StderrCaptured: l.opts.Stderr == StderrCapture}
	if t.Dir != "" {
		// The child's chdir failure would look like a missing command.
		info, err := os.Stat(t.Dir)
		if err == nil && !info.IsDir() {
			err = syscall.ENOTDIR
		}
		if err != nil {
			r.ExitCode, r.Err = ExitNeverStarted, fmt.Errorf("cannot start %s: dir %q: %w", t.Command, t.Dir, unwrapPath(err))
			return r
		}
	}
	path, err := l.lookPath(t.Command)
	if err != nil {
		r.ExitCode, r.Err = startFailure(t.Command, err)
		return r
	}
	timeout := cmp.Or(t.Timeout, l.opts.Timeout)
	runCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	var stopped atomic.Bool
	cmd := exec.CommandContext(runCtx, path, t.Args...)
	cmd.Args[0] = t.Command
	cmd.Dir = t.Dir
	cmd.Env = l.env(t.Env)
	// Its own process group, so that stopping it reaches its children; and
	// killed if the pool itself dies without a chance to stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		stopped.Store(true)
		return signalGroup(cmd.Process.Pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = l.opts.Grace
	cmd.Stdin = l.devNull
	if t.HasStdin {
		cmd.Stdin = strings.NewReader(t.Stdin)
	}

	var outputs []*capture
	stdout, err := l.newCapture()
	if err != nil {
		r.ExitCode, r.Err = ExitNeverStarted, err
		return r
	}
	defer stdout.close()
	cmd.Stdout, outputs = stdout.w, append(outputs, stdout)
	var stderr *capture
	switch l.opts.Stderr {
	case StderrCapture:
		if stderr, err = l.newCapture(); err != nil {
			r.ExitCode, r.Err = ExitNeverStarted, err
			return r
		}
		defer stderr.close()
		cmd.Stderr, outputs = stderr.w, append(outputs, stderr)
	case StderrInherit:
		cmd.Stderr = l.opts.InheritTo
	default:
		cmd.Stderr = l.devNull
	}

	start := time.Now()
	err = cmd.Start()
	for _, c := range outputs {
		c.w.Close() // the child holds its own copy
	}
	if err != nil && runCtx.Err() != nil && ctx.Err() == nil {
		// The time limit ran out before the process could start.
		r.ExitCode, r.TimedOut = ExitTimedOut, true
		r.Err = fmt.Errorf("timed out after %s", timeout)
		return r
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ErrCancelled
		}
		r.ExitCode, r.Err = startFailure(t.Command, err)
		return r
	}
	r.Started = true
	for _, c := range outputs {
		go c.collect()
	}
	_ = cmd.Wait() // the outcome is read from ProcessState below
	r.Duration = time.Since(start)
	l.drain(cmd.Process.Pid, outputs, stopped.Load())

	r.Stdout, r.Truncated = stdout.output()
	if stderr != nil {
		var cut bool
		r.Stderr, cut = stderr.output()
		r.Truncated = r.Truncated || cut
	}
	r.ExitCode, r.Signal = exitStatus(cmd.ProcessState)
	if stopped.Load() {
		if ctx.Err() != nil {
			r.Err = ErrCancelled
		} else {
			r.TimedOut, r.ExitCode = true, ExitTimedOut
			r.Err = fmt.Errorf("timed out after %s", timeout)
		}
	}
	return r
}

// drain waits for the child's output to end after the child has exited.
// What is left of its process group gets SIGTERM and, after the grace
// period, SIGKILL; the pipes are then abandoned. When the task was already
// being stopped, its grace period is spent and the group gets SIGKILL.
func (l *Local) drain(pid int, outputs []*capture, stopped bool) {
	if stopped {
		_ = signalGroup(pid, syscall.SIGKILL)
	} else {
		_ = signalGroup(pid, syscall.SIGTERM)
	}
	timer := time.NewTimer(l.opts.Grace)
	defer timer.Stop()
	for _, c := range outputs {
		select {
		case <-c.done:
			continue
		case <-timer.C:
		}
		_ = signalGroup(pid, syscall.SIGKILL)
		for _, c := range outputs {
			_ = c.r.SetReadDeadline(time.Now())
		}
		for _, c := range outputs {
			<-c.done
		}
		return
	}
}

// signalGroup sends sig to the process group led by pid. A group that no
// longer exists is not an error.
func signalGroup(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// exitStatus returns the exit code in the shell's convention, and the name
// of the signal that ended the process, if any.
func exitStatus(ps *os.ProcessState) (int, string) {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return ps.ExitCode(), ""
	}
	return exitSignalBase + int(ws.Signal()), unix.SignalName(ws.Signal())
}

// startFailure maps an error from looking up or starting a command to an
// exit code and a message.
func startFailure(command string, err error) (int, error) {
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.As(err, &pathErr) && errors.Is(err, fs.ErrNotExist):
		return ExitNotFound, fmt.Errorf("command not found: %s", command)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EISDIR), errors.Is(err, exec.ErrDot):
		return ExitNotExecutable, fmt.Errorf("command not executable: %s: %w", command, unwrapPath(err))
	}
	return ExitNeverStarted, fmt.Errorf("cannot start %s: %w", command, err)
}

func unwrapPath(err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	var execErr *exec.Error
	if errors.As(err, &execErr) {
		return execErr.Err
	}
	return err
}

// Resolve returns the program that command names, as Execute would run it,
// or why it cannot run.
func (l *Local) Resolve(command string) (string, error) {
	path, err := l.lookPath(command)
	if err == nil && strings.ContainsRune(command, '/') {
		_, err = exec.LookPath(command) // checks that it exists and is executable
	}
	if err != nil {
		_, err = startFailure(command, err)
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

// env returns the child's environment: the pool's, with extra added last so
// that it wins. A nil result means the pool's environment unchanged.
func (l *Local) env(extra map[string]string) []string {
	if len(extra) == 0 {
		return nil
	}
	env := slices.Clip(l.environ)
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// capture collects one output stream of a child, up to a limit; bytes past
// the limit are read and dropped so the child never blocks on a full pipe.
type capture struct {
	r, w *os.File
	buf  spillBuffer
	done chan struct{}
}

func (l *Local) newCapture() (*capture, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	buf := spillBuffer{limit: l.opts.MaxOutput, inMemory: l.opts.SpillAfter, tempDir: l.opts.TempDir}
	return &capture{r: r, w: w, buf: buf, done: make(chan struct{})}, nil
}

func (c *capture) collect() {
	defer close(c.done)
	defer c.buf.release()
	_, err := c.buf.ReadFrom(c.r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.readBuffered()
	}
}

// readBuffered takes what is still in the pipe after reading was cut short,
// without waiting for more: a busy machine may not have scheduled the reader
// before the pipe was abandoned.
func (c *capture) readBuffered() {
	rc, err := c.r.SyscallConn()
	if err != nil || c.r.SetReadDeadline(time.Time{}) != nil {
		return
	}
	// Bounded, in case a writer outside the group keeps filling the pipe.
	for range 64 {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = c.buf.readOnce(func(p []byte) (int, error) { return syscall.Read(int(fd), p) })
			return true // never wait for more
		})
		if err != nil || rerr != nil || n <= 0 {
			return
		}
	}
}

// output hands over what was captured, and whether the limit cut it.
func (c *capture) output() (Output, bool) {
	b := &c.buf
	return Output{Head: b.head, Spill: b.spill, SpillSize: b.spilled}, b.dropped
}

func (c *capture) close() { c.r.Close() }

// spillBuffer keeps the first limit bytes read into it (all of them when
// limit is zero) and drops the rest. The first inMemory bytes stay in
// memory, the others go to a temporary file.
type spillBuffer struct {
	limit    int64
	inMemory int
	tempDir  string

	head    []byte
	spill   *os.File
	spilled int64
	scratch *[chunk]byte
	dropped bool
	err     error // from the spill file; what cannot be kept is dropped
}

// chunk is the most read from a pipe at once.
const chunk = 64 << 10

// ReadFrom reads r to its end.
func (b *spillBuffer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		n, err := b.readOnce(r.Read)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (b *spillBuffer) size() int64 { return int64(len(b.head)) + b.spilled }

// readOnce makes one read through a scratch chunk and keeps what it got:
// in memory while the head is under inMemory, then in the spill file;
// once the limit is reached it is dropped.
func (b *spillBuffer) readOnce(read func([]byte) (int, error)) (int, error) {
	buf := b.scratchBuf()
	room := int64(len(buf))
	if b.limit > 0 {
		room = min(room, max(b.limit-b.size(), 0))
	}
	if room == 0 || b.err != nil {
		n, err := read(buf)
		b.dropped = b.dropped || n > 0
		return n, err
	}
	n, err := read(buf[:room])
	if n <= 0 {
		return n, err
	}
	got := buf[:n]
	if inMem := min(len(got), b.inMemory-len(b.head)); inMem > 0 {
		b.head = append(b.head, got[:inMem]...)
		got = got[inMem:]
	}
	if len(got) > 0 {
		b.keep(got)
	}
	return n, err
}

// keep appends p to the spill file, creating it (unlinked) on first use.
func (b *spillBuffer) keep(p []byte) {
	if b.spill == nil {
		f, err := os.CreateTemp(b.tempDir, "workerpool-output-*")
		if err != nil {
			b.err, b.dropped = err, true
			return
		}
		os.Remove(f.Name())
		b.spill = f
	}
	n, err := b.spill.Write(p)
	b.spilled += int64(n)
	if err != nil {
		b.err, b.dropped = err, true
	}
}

// scratchPool holds the chunks that pipes are read through, so that a task
// with little output allocates only what it printed.
var scratchPool = sync.Pool{New: func() any { return new([chunk]byte) }}

func (b *spillBuffer) scratchBuf() []byte {
	if b.scratch == nil {
		b.scratch = scratchPool.Get().(*[chunk]byte)
	}
	return b.scratch[:]
}

// release returns the scratch chunk; the buffer may read again after it.
func (b *spillBuffer) release() {
	if b.scratch != nil {
		scratchPool.Put(b.scratch)
		b.scratch = nil
	}
}
