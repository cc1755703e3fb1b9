package dispatch

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workerpool/workerpool/internal/shorten"
	"github.com/workerpool/workerpool/job"
)

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

// prepare sets up the command for t, ready to start: its program (see
// resolve), working directory, environment, standard input and output
// captures.
func (l *Local) prepare(t *job.Task) (*process, error) {
	path, _, err := l.resolve(t)
	if err != nil {
		return nil, err
	}
	g, err := newGroup()
	if err != nil {
		return nil, err
	}
	argv := make([]string, 1+len(t.Args))
	argv[0] = t.Command
	copy(argv[1:], t.Args)
	limits := t.Limits
	if l.opts.Nice != 0 {
		limits.Nice = l.opts.Nice
	}
	p := &process{path: path, argv: argv, group: g, limits: limits}
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
		if p.stdin, err = newFeeder(t); err != nil {
			return err
		}
		files[0] = p.stdin.r
	}
	if files[1], err = p.capture(l, lineSink(t, false)); err != nil {
		return err
	}
	switch l.opts.Stderr {
	case StderrCapture:
		files[2], err = p.capture(l, lineSink(t, true))
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
	src  io.Reader
	file *os.File // the file src reads a chunk of, closed with the feeder
}

// newFeeder prepares the stdin of t: its Stdin, or the bytes of the file
// its Chunk names, which are copied from the file to the pipe as the child
// reads them, through a small buffer: the chunk is never held whole.
func newFeeder(t *job.Task) (*feeder, error) {
	f := &feeder{src: strings.NewReader(t.Stdin)}
	if c := t.Chunk; c != nil && c.Path != "" {
		// %v, not %w: the file missing is not the command missing.
		file, err := os.Open(c.Path)
		if err != nil {
			return nil, fmt.Errorf("cannot read its chunk of %s: %v", c.Path, shorten.Error(err))
		}
		if _, err := file.Seek(c.Offset, io.SeekStart); err != nil {
			file.Close()
			return nil, fmt.Errorf("cannot read its chunk of %s: %v", c.Path, shorten.Error(err))
		}
		f.file, f.src = file, &io.LimitedReader{R: file, N: c.Length}
	}
	var err error
	if f.r, f.w, err = os.Pipe(); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

// feed writes the data, then closes the pipe so the reader sees its end.
// It returns early, with what is unwritten dropped, when close closes the
// pipe or nobody holds the read end any more.
func (f *feeder) feed() {
	_, _ = io.Copy(f.w, f.src)
	f.w.Close()
	if f.file != nil {
		f.file.Close()
	}
}

func (f *feeder) close() {
	if f.r != nil {
		f.r.Close()
		f.w.Close()
	}
	if f.file != nil {
		f.file.Close()
	}
}

// lineSink returns what gives t's lines of one stream to t.Lines, or nil
// when t has none.
func lineSink(t *job.Task, stderr bool) func([]byte) {
	if t.Lines == nil {
		return nil
	}
	return func(line []byte) { t.Lines.Line(stderr, line) }
}

// capture adds a capture of one output stream, whose lines go to sink
// when it is not nil, and returns its write end.
func (p *process) capture(l *Local, sink func([]byte)) (*os.File, error) {
	c, err := l.newCapture(sink)
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
