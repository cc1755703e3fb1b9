package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/job"
)

// conn is a running agent on one host, reached through the transport: the
// pool writes requests to its standard input and reads replies from its
// standard output.
type conn struct {
	host    string // as results name it
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  *bufio.Reader
	stderr  *tail
	timeout time.Duration // for tasks without a time limit of their own
	limits  job.Limits    // for the limits tasks do not set
	tempDir string        // for outputs too big to keep in memory
	hello   hello

	wmu sync.Mutex
	w   *bufio.Writer

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan delivery

	// dead is closed once the agent's output has ended, and err says why.
	// Only the reader closes it, after the last reply it delivers.
	dead    chan struct{}
	err     error
	closing bool // close has been called: the end is no failure
}

// taskDefaults are what the pool gives the tasks that do not say: a time
// limit and limits.
type taskDefaults struct {
	timeout time.Duration
	limits  job.Limits
}

// delivery is a task's result as the agent reported it, with its outputs.
type delivery struct{ res job.Result }

// helloTimeout bounds the wait for an agent's hello, past ssh's own
// connection timeout: a login that hangs is a failed connection.
const helloTimeout = 30 * time.Second

// dial starts the agent on dest with the shell command line remote and
// reads its hello. On success the conn's reader runs until the agent's
// output ends, and then calls gone.
func dial(ctx context.Context, tr transport, host, dest, remote string, defaults taskDefaults, tempDir string, inherit io.Writer, gone func(*conn)) (*conn, error) {
	cmd := tr.command(context.WithoutCancel(ctx), dest, remote)
	c := &conn{host: host, cmd: cmd, timeout: defaults.timeout, limits: defaults.limits, tempDir: tempDir, stderr: &tail{inherit: inherit},
		pending: map[uint64]chan delivery{}, dead: make(chan struct{})}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", cmd.Path, err)
	}
	c.w = bufio.NewWriterSize(c.stdin, 64<<10)
	c.stdout = bufio.NewReaderSize(stdout, 64<<10)
	if err := c.greet(ctx); err != nil {
		return nil, err
	}
	go c.read(gone)
	return c, nil
}

// greet reads the agent's hello and checks that it speaks the pool's
// protocol. It gives up when ctx is done or helloTimeout passes.
func (c *conn) greet(ctx context.Context) error {
	got := make(chan error, 1)
	go func() { got <- readHello(c.stdout, &c.hello) }()
	timer := time.NewTimer(helloTimeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-got:
	case <-timer.C:
		c.kill()
		<-got
		_ = c.cmd.Wait()
		return fmt.Errorf("no answer within %s", helloTimeout)
	case <-ctx.Done():
		c.kill()
		<-got
		_ = c.cmd.Wait()
		return context.Cause(ctx)
	}
	if err != nil {
		// The agent did not start: ssh failed, or the program is missing
		// or too old. Its exit status and stderr tell which.
		c.stdin.Close()
		return c.exitError("the workerpool agent did not start", err)
	}
	if c.hello.Protocol != Protocol {
		c.kill()
		_ = c.cmd.Wait()
		return fmt.Errorf("its workerpool %s speaks agent protocol %d and this one %d: run the same version on both (or use --push)",
			c.hello.Agent, c.hello.Protocol, Protocol)
	}
	return nil
}

// maxGreeting is how many lines at most may come before an agent's hello:
// what a login shell prints on the way (a banner from a profile), which
// is skipped.
const maxGreeting = 100

// readHello reads the agent's hello, skipping the lines before it that
// are not one.
func readHello(r *bufio.Reader, h *hello) error {
	for range maxGreeting {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if !bytes.HasPrefix(line, []byte(`{"workerpool_agent"`)) {
			continue
		}
		if err := json.Unmarshal(line, h); err != nil {
			return fmt.Errorf("unexpected hello %q: %w", clip(line, 80), err)
		}
		return nil
	}
	return fmt.Errorf("no hello in the first %d lines", maxGreeting)
}

// exitError waits for the transport to end and says why the agent ended:
// what, then ssh's (or the agent's) exit status and last words.
func (c *conn) exitError(what string, readErr error) error {
	waitErr := c.cmd.Wait()
	if waitErr == nil {
		if errors.Is(readErr, io.EOF) {
			return fmt.Errorf("%s: it ended", what)
		}
		return fmt.Errorf("%s: %w", what, readErr)
	}
	return fmt.Errorf("%s: %w", what, commandError(waitErr, c.stderr.bytes()))
}

// run runs t on the agent and waits for its result. When ctx is done it
// asks the agent to stop the task, and waits for that. When the agent is
// lost first, the result's Err wraps job.ErrHostLost.
func (c *conn) run(ctx context.Context, t *job.Task) job.Result {
	res := job.Result{Seq: t.Seq, Identifier: t.Identifier, Meta: t.Meta, ExitCode: job.ExitNeverStarted}
	id, got := c.register()
	defer c.unregister(id)
	if err := c.send(taskRequest(id, t, c.timeout, c.limits)); err != nil {
		c.kill()
	}
	var d delivery
	var ok bool
	select {
	case d, ok = <-got:
	case <-c.dead:
	case <-ctx.Done():
		if err := c.send(request{ID: id, Cancel: true}); err != nil {
			c.kill()
		}
		select {
		case d, ok = <-got:
		case <-c.dead:
		}
	}
	if !ok {
		// The reader delivers every reply before it closes dead.
		select {
		case d, ok = <-got:
		default:
		}
	}
	switch {
	case ok:
		d.res.Seq, d.res.Identifier, d.res.Meta = t.Seq, t.Identifier, t.Meta
		return d.res
	case ctx.Err() != nil:
		res.Err = job.ErrCancelled
	default:
		res.Err = fmt.Errorf("%w: %s: %w", job.ErrHostLost, c.host, c.err)
	}
	return res
}

func (c *conn) register() (uint64, chan delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	ch := make(chan delivery, 1)
	c.pending[c.nextID] = ch
	return c.nextID, ch
}

func (c *conn) unregister(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, id)
}

// send writes a request and flushes it.
func (c *conn) send(q request) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := writeLine(c.w, q); err != nil {
		return err
	}
	return c.w.Flush()
}

// read reads replies and delivers each to its task, until the agent's
// output ends; then it records why, closes dead and calls gone.
func (c *conn) read(gone func(*conn)) {
	var err error
	for {
		var d delivery
		var id uint64
		if id, d, err = c.receive(); err != nil {
			break
		}
		c.mu.Lock()
		ch, ok := c.pending[id]
		c.mu.Unlock()
		if !ok {
			d.res.Close()
			continue
		}
		ch <- d
	}
	if c.isClosing() && errors.Is(err, io.EOF) {
		c.err = errors.New("closed")
		_ = c.cmd.Wait()
	} else {
		c.err = c.exitError("connection lost", err)
	}
	close(c.dead)
	gone(c)
}

// receive reads one reply and the outputs that follow it.
func (c *conn) receive() (uint64, delivery, error) {
	var rep reply
	if err := readLine(c.stdout, &rep); err != nil {
		return 0, delivery{}, err
	}
	var d delivery
	rep.result(&d.res)
	for i, n := range []int64{rep.Stdout, rep.Stderr} {
		body := &io.LimitedReader{R: c.stdout, N: n}
		out, err := dispatch.ReadOutput(body, c.tempDir)
		if i == 0 {
			d.res.Stdout = out
		} else {
			d.res.Stderr = out
		}
		if body.N > 0 { // the stream ended within the output
			d.res.Close()
			return 0, delivery{}, io.ErrUnexpectedEOF
		}
		if err != nil && d.res.Err == nil {
			d.res.Err = err // kept in part: the task fails, as it would here
		}
	}
	return rep.ID, d, nil
}

// close ends the conversation: the agent sees its input end, stops what
// still runs (nothing, once every task has its result), and exits. close
// waits for that, up to wait, then kills the transport.
func (c *conn) close(wait time.Duration) {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.stdin.Close()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-c.dead:
	case <-timer.C:
		c.kill()
		<-c.dead
	}
}

// isDead reports whether the agent's output has ended: its host is about
// to be told (gone), and no task should be sent to it meanwhile. A nil
// conn, this machine's, never dies.
func (c *conn) isDead() bool {
	if c == nil {
		return false
	}
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// kill ends the transport at once; the agent sees its input end.
func (c *conn) kill() {
	if c.cmd.Process != nil {
		_ = c.cmd.Process.Kill()
	}
}

// tail keeps the last bytes written to it, to tell why a transport ended,
// and passes everything on to inherit when it is set.
type tail struct {
	inherit io.Writer
	mu      sync.Mutex
	buf     []byte
}

const tailSize = 4 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	if t.inherit != nil {
		_, _ = t.inherit.Write(p)
	}
	return len(p), nil
}

func (t *tail) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}
