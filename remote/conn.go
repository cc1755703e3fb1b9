package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/internal/shorten"
	"github.com/workerpool/workerpool/internal/spool"
	"github.com/workerpool/workerpool/job"
)

// conn is a running agent on one host, reached through the transport: the
// pool writes requests to its standard input and reads replies from its
// standard output.
//
// No wait on the agent is unbounded. Each side writes a heartbeat every
// beat; an agent not heard from for livenessBeats beats is lost, and its
// connection killed. A cancelled task whose reply does not come within the
// grace and replyMargin, and a task that runs past its time limit by as
// much, kill the connection too. A killed connection ends: its reader
// stops, at the latest outputGrace after the transport exits, and its
// tasks see dead.
type conn struct {
	host    string // as results name it
	cmd     *exec.Cmd
	stdin   *os.File // the pool's end of the agent's standard input
	stdoutR *os.File // the pool's end of the agent's standard output
	stdout  *bufio.Reader
	stderrR *os.File // the pool's end of the transport's standard error
	stderr  *tail    // what came on it
	// stderrDone is closed once stderr has been read to its end, or
	// reading it has been cut short.
	stderrDone chan struct{}
	grace      time.Duration // the agents' --grace
	beat       time.Duration // heartbeat interval
	tempDir    string        // for outputs too big to keep in memory
	hello      hello
	heard      atomic.Int64 // when a byte last came from the agent, in Unix nanoseconds

	wmu sync.Mutex
	w   *bufio.Writer

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan delivery // tasks sent and not yet answered
	closing bool                     // close has been called: the end is no failure
	failure error                    // why the pool ended the connection, if it did

	// exited is closed once the transport's process has been waited for,
	// and waitErr says how it ended.
	exited   chan struct{}
	waitErr  error
	reapOnce sync.Once
	// dead is closed once the agent's output has ended, and err says why.
	// Only the reader closes it, after the last reply it delivers.
	dead chan struct{}
	err  error
}

// connOptions configure a conn.
type connOptions struct {
	grace   time.Duration
	beat    time.Duration // zero: DefaultHeartbeat
	tempDir string
	inherit io.Writer // receives the transport's stderr too, when set
}

// delivery is a task's result as the agent reported it, with its outputs.
type delivery struct{ res job.Result }

const (
	// helloTimeout bounds the wait for an agent's hello, past ssh's own
	// connection timeout: a login that hangs is a failed connection.
	helloTimeout = 30 * time.Second
	// DefaultHeartbeat is how often each side of a connection writes a
	// heartbeat.
	DefaultHeartbeat = 2 * time.Second
	// livenessBeats is how many heartbeats may pass without a word before
	// the other side is taken for lost.
	livenessBeats = 3
	// replyMargin is how long past the grace the pool waits for the reply
	// to a cancel, or for a task past its time limit, before it ends the
	// connection.
	replyMargin = 3 * time.Second
	// outputGrace is how long the agent's output is read after the
	// transport has exited, should a process it left hold the output open.
	outputGrace = 5 * time.Second
	// stderrDrain is how long the transport's stderr is read after it has
	// exited, for the last words it left in the pipe.
	stderrDrain = 100 * time.Millisecond
)

// dial starts the agent on dest, the program argv, and reads its hello.
// On success the conn's reader runs until the agent's output ends, and
// then calls gone.
func dial(ctx context.Context, tr Transport, host, dest string, argv []string, opts connOptions, gone func(*conn)) (*conn, error) {
	if opts.beat <= 0 {
		opts.beat = DefaultHeartbeat
	}
	cmd := tr.Command(context.WithoutCancel(ctx), dest, argv)
	c := &conn{host: host, cmd: cmd, grace: opts.grace, beat: opts.beat, tempDir: opts.tempDir,
		stderr: &tail{inherit: opts.inherit}, pending: map[uint64]chan delivery{}, exited: make(chan struct{}), dead: make(chan struct{})}
	if err := c.start(); err != nil {
		return nil, err
	}
	if err := c.greet(ctx); err != nil {
		return nil, err
	}
	go c.read(gone)
	go c.watch()
	go c.pulse()
	return c, nil
}

// start starts the transport, with pipes of the pool's own for the agent's
// input and output, so that writes can have deadlines and reading can be
// cut short.
func (c *conn) start() error {
	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return err
	}
	// The transport's stderr is a pipe of the pool's own too: a process it
	// leaves behind, such as ssh's shared connection, may hold it open, and
	// then must not hold up Wait.
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = inR, outW, errW
	err = c.cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return fmt.Errorf("cannot start %s: %w", c.cmd.Path, err)
	}
	c.stdin, c.stdoutR, c.stderrR = inW, outR, errR
	c.stderrDone = make(chan struct{})
	go func() {
		defer close(c.stderrDone)
		_, _ = io.Copy(c.stderr, errR)
	}()
	c.heard.Store(time.Now().UnixNano())
	c.w = bufio.NewWriterSize(c.stdin, 64<<10)
	c.stdout = bufio.NewReaderSize(heardReader{c}, 64<<10)
	go c.wait()
	return nil
}

// wait waits for the transport to exit, then gives its output outputGrace
// to end before reading it is cut short.
func (c *conn) wait() {
	c.waitErr = c.cmd.Wait()
	close(c.exited)
	timer := time.NewTimer(outputGrace)
	defer timer.Stop()
	select {
	case <-timer.C:
		if c.stdoutR.SetReadDeadline(time.Now()) != nil {
			c.stdoutR.Close() // where a pipe has no deadlines
		}
	case <-c.dead:
	}
}

// heardReader reads the agent's output, noting when bytes come.
type heardReader struct{ c *conn }

func (r heardReader) Read(p []byte) (int, error) {
	n, err := r.c.stdoutR.Read(p)
	if n > 0 {
		r.c.heard.Store(time.Now().UnixNano())
	}
	return n, err
}

// greet reads the agent's hello and checks that it speaks the pool's
// protocol. It gives up when ctx is done or helloTimeout passes.
func (c *conn) greet(ctx context.Context) error {
	read, err := awaitHello(ctx, c.stdout, &c.hello, c.kill)
	if !read {
		c.reap()
		return err
	}
	if err != nil {
		// The agent did not start: ssh failed, or the program is missing
		// or too old, or the login said something else. Its exit status
		// and stderr tell which.
		c.stdin.Close()
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			c.kill()
		}
		return c.exitError("the workerpool agent did not start", err)
	}
	if c.hello.Protocol != Protocol {
		c.kill()
		c.reap()
		return fmt.Errorf("its workerpool %s speaks agent protocol %d and this one %d: run the same version on both (or use --push)",
			c.hello.Agent, c.hello.Protocol, Protocol)
	}
	return nil
}

// awaitHello reads the agent's hello from r into h, and waits for it until
// helloTimeout passes or ctx is done. Then it calls stop, which must make
// the read return, waits for that, and returns read false and why it gave
// up. Otherwise read is true, and err is readHello's.
func awaitHello(ctx context.Context, r *bufio.Reader, h *hello, stop func()) (read bool, err error) {
	got := make(chan error, 1)
	go func() { got <- readHello(r, h) }()
	timer := time.NewTimer(helloTimeout)
	defer timer.Stop()
	select {
	case err = <-got:
		return true, err
	case <-timer.C:
		err = fmt.Errorf("no answer within %s", helloTimeout)
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	stop()
	<-got
	return false, err
}

// reap waits for the transport to exit: outputGrace at most, and then it
// kills it. Then it takes what the transport wrote to stderr, without
// waiting for a process it left behind to close it.
func (c *conn) reap() {
	c.killAfter(outputGrace, c.exited)
	c.reapOnce.Do(func() {
		// What the transport wrote before it exited is in the pipe already:
		// a moment is enough to read it.
		if c.stderrR.SetReadDeadline(time.Now().Add(stderrDrain)) != nil {
			select { // where a pipe has no deadlines
			case <-c.stderrDone:
			case <-time.After(stderrDrain):
			}
			c.stderrR.Close()
		}
		<-c.stderrDone
		c.release()
	})
}

const (
	// maxGreeting is how many lines at most may come before an agent's
	// hello: what a login shell prints on the way (a banner from a
	// profile), which is skipped.
	maxGreeting = 100
	// maxGreetingBytes bounds those lines in bytes, for noise that has no
	// line ends.
	maxGreetingBytes = 16 << 10
)

// readHello reads the agent's hello, skipping what comes before it: lines
// a login prints, and text without a line end. It gives up after
// maxGreeting lines or maxGreetingBytes bytes without a hello, quoting the
// first of them.
func readHello(r *bufio.Reader, h *hello) error {
	var before []byte
	lines := 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && len(before) > 0 {
				return fmt.Errorf("%w after %q", io.ErrUnexpectedEOF, shorten.Line(before, 80))
			}
			return err
		}
		before = append(before, b)
		if bytes.HasSuffix(before, []byte(helloMarker)) {
			rest, err := r.ReadBytes('\n')
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
			line := append([]byte(helloMarker), rest...)
			if err := json.Unmarshal(line, h); err != nil {
				return fmt.Errorf("unexpected hello %q: %w", shorten.Line(line, 80), err)
			}
			return nil
		}
		if b == '\n' {
			lines++
		}
		if lines >= maxGreeting || len(before) >= maxGreetingBytes {
			return fmt.Errorf("no hello in the first %d lines or %d KiB; the host said %q", maxGreeting, maxGreetingBytes>>10, shorten.Line(before, 80))
		}
	}
}

// release closes the pool's ends of the agent's pipes, once the transport
// has exited and what it wrote to stderr has been read. A reader still
// blocked on the agent's output, should a process the transport left hold
// it open, then returns.
func (c *conn) release() {
	c.wmu.Lock()
	c.stdin.Close()
	c.wmu.Unlock()
	c.stdoutR.Close()
	c.stderrR.Close()
}

// exitError waits, a bounded time, for the transport to end and says why
// the agent ended: what, then ssh's (or the agent's) exit status and last
// words.
func (c *conn) exitError(what string, readErr error) error {
	c.reap()
	if c.waitErr == nil || !errors.Is(readErr, io.EOF) && !errors.Is(readErr, io.ErrUnexpectedEOF) {
		if errors.Is(readErr, io.EOF) {
			return fmt.Errorf("%s: it ended", what)
		}
		return fmt.Errorf("%s: %w", what, readErr)
	}
	return fmt.Errorf("%s: %w", what, commandError(c.waitErr, c.stderr.bytes()))
}

// run runs t on the agent and waits for its result. When ctx is done it
// asks the agent to stop the task, and waits for that. When the agent is
// lost first, the result's Err wraps job.ErrHostLost.
//
// Every wait is bounded: a cancel unanswered within the grace and
// replyMargin, or a task that outlives its time limit by as much, ends
// the connection, and a dead connection answers every task at once.
func (c *conn) run(ctx context.Context, t *job.Task) job.Result {
	res := job.Result{Seq: t.Seq, Identifier: t.Identifier, Meta: t.Meta, ExitCode: job.ExitNeverStarted}
	id, got := c.register()
	q := taskRequest(id, t)
	if err := c.send(q); err != nil {
		c.fail(fmt.Errorf("cannot send a task: %w", err))
	}
	var overdue, answerBy <-chan time.Time
	if q.Timeout > 0 {
		timer := time.NewTimer(time.Duration(q.Timeout) + c.grace + replyMargin)
		defer timer.Stop()
		overdue = timer.C
	}
	done := ctx.Done()
	late := false
	for {
		select {
		case d := <-got:
			return c.answer(t, &q, &d.res, late, done == nil)
		case <-c.dead:
			select { // the reader delivers every reply before it closes dead
			case d := <-got:
				return c.answer(t, &q, &d.res, late, done == nil)
			default:
			}
			c.unregister(id)
			switch {
			case late:
				res.ExitCode, res.TimedOut = job.ExitTimedOut, true
				res.Err = fmt.Errorf("timed out after %s; %s did not stop it, and its connection was ended", time.Duration(q.Timeout), c.host)
			case ctx.Err() != nil:
				res.Err = job.ErrCancelled
			default:
				res.Err = fmt.Errorf("%w: %s: %w", job.ErrHostLost, c.host, c.err)
			}
			return res
		case <-done:
			done = nil
			if err := c.send(request{ID: id, Cancel: true}); err != nil {
				c.fail(fmt.Errorf("cannot send a cancel: %w", err))
			}
			timer := time.NewTimer(c.grace + replyMargin)
			defer timer.Stop()
			answerBy = timer.C
		case <-answerBy:
			answerBy = nil
			if c.isPending(id) { // not while its reply's outputs come
				c.fail(fmt.Errorf("no answer to a cancel within %s", c.grace+replyMargin))
			}
		case <-overdue:
			// An agent still beating lets a task outlive its limit: the task
			// timed out. One silent too is lost, as the watch would find.
			overdue = nil
			if !c.isPending(id) { // its reply has come, and its outputs are coming
				continue
			}
			if silent := c.silence(); silent >= 2*c.beat {
				c.fail(fmt.Errorf("no word from the agent for %s", silent.Round(100*time.Millisecond)))
			} else {
				late = true
				c.fail(fmt.Errorf("a task ran past its time limit of %s by more than %s", time.Duration(q.Timeout), c.grace+replyMargin))
			}
		}
	}
}

// answer returns the result r the agent gave for t, sent as q. A task
// that the pool did not stop, but the agent says was cancelled, was
// stopped by the agent itself, which does so only when it has heard
// nothing from the pool for a while or is ended: the task's host is lost
// to it, and it runs again elsewhere. One past its time limit on the
// pool's clock (late) was cancelled for that, and timed out.
func (c *conn) answer(t *job.Task, q *request, r *job.Result, late, cancelled bool) job.Result {
	r.Seq, r.Identifier, r.Meta = t.Seq, t.Identifier, t.Meta
	switch {
	case !errors.Is(r.Err, job.ErrCancelled):
	case late:
		r.ExitCode, r.TimedOut, r.Err = job.ExitTimedOut, true, fmt.Errorf("timed out after %s", time.Duration(q.Timeout))
	case !cancelled:
		r.Err = fmt.Errorf("%w: %s: its agent stopped the task, having lost the pool", job.ErrHostLost, c.host)
	}
	return *r
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

// isPending reports whether task id has had no reply yet.
func (c *conn) isPending(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	return ok
}

// take returns the channel of the task id, which is then no longer
// pending, or nil when no task id is pending: a reply for it is a
// protocol error.
func (c *conn) take(id uint64) chan delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.pending[id]
	delete(c.pending, id)
	return ch
}

// send writes a request and flushes it. A write that the agent does not
// take within livenessBeats beats fails, where the system allows write
// deadlines on pipes.
func (c *conn) send(q request) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.stdin.SetWriteDeadline(time.Now().Add(livenessBeats * c.beat))
	if err := writeLine(c.w, q); err != nil {
		return err
	}
	return c.w.Flush()
}

// pulse writes a heartbeat every beat until the connection ends or closes.
func (c *conn) pulse() {
	tick := time.NewTicker(c.beat)
	defer tick.Stop()
	for {
		if c.isClosing() {
			return
		}
		if err := c.send(request{Heartbeat: int64(c.beat)}); err != nil && !c.isClosing() {
			c.fail(fmt.Errorf("cannot send a heartbeat: %w", err))
			return
		}
		select {
		case <-tick.C:
		case <-c.dead:
			return
		}
	}
}

// watch ends the connection once the agent has said nothing for
// livenessBeats beats: a frozen agent, or a host gone silent.
func (c *conn) watch() {
	tick := time.NewTicker(c.beat)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-c.dead:
			return
		}
		if silent := c.silence(); silent > livenessBeats*c.beat {
			c.fail(fmt.Errorf("no word from the agent for %s", silent.Round(100*time.Millisecond)))
			return
		}
	}
}

// silence is how long the agent has said nothing.
func (c *conn) silence() time.Duration {
	return time.Since(time.Unix(0, c.heard.Load()))
}

// fail ends the connection for err, unless it has already failed: it kills
// the transport, and the reader then ends with err as the reason.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.failure == nil {
		c.failure = err
	}
	c.mu.Unlock()
	c.kill()
}

// failed returns why the pool ended the connection, or nil.
func (c *conn) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failure
}

// read reads replies and delivers each to its task, until the agent's
// output ends or breaks the protocol, which ends the connection; then it
// records why, closes dead and calls gone.
func (c *conn) read(gone func(*conn)) {
	err := c.readReplies()
	ended := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed)
	if !ended {
		c.fail(fmt.Errorf("protocol error: %w", err))
	}
	c.reap()
	switch failure := c.failed(); {
	case failure != nil:
		c.err = failure
	case c.isClosing() && errors.Is(err, io.EOF):
		c.err = errors.New("closed")
	default:
		c.err = c.exitError("connection lost", err)
	}
	close(c.dead)
	gone(c)
}

// readReplies reads replies and delivers them until an error.
func (c *conn) readReplies() error {
	for {
		var rep reply
		if err := readLine(c.stdout, &rep); err != nil {
			return err
		}
		if rep.Heartbeat {
			continue
		}
		if err := rep.check(); err != nil {
			return err
		}
		ch := c.take(rep.ID)
		if ch == nil {
			return fmt.Errorf("a reply for task %d, which is not running there", rep.ID)
		}
		d, err := c.receive(&rep)
		if err != nil {
			return err
		}
		ch <- d // never blocks: each channel has room for its one reply
	}
}

// receive reads the outputs that follow rep. Output that cannot be kept
// fails the task as it would here: its result says why, and truncated.
func (c *conn) receive(rep *reply) (delivery, error) {
	var d delivery
	rep.result(&d.res)
	for i, n := range []int64{rep.Stdout, rep.Stderr} {
		body := &io.LimitedReader{R: c.stdout, N: n}
		out, cut, err := spool.ReadOutput(body, [2]string{"stdout", "stderr"}[i], c.tempDir)
		if i == 0 {
			d.res.Stdout = out
		} else {
			d.res.Stderr = out
		}
		if body.N > 0 { // the stream ended within the output
			d.res.Close()
			return delivery{}, io.ErrUnexpectedEOF
		}
		d.res.Truncated = d.res.Truncated || cut
		if err != nil && d.res.Err == nil {
			d.res.Err = err // kept in part: the task fails, as it would here
		}
	}
	return d, nil
}

// close ends the conversation: the agent sees its input end, stops what
// still runs (nothing, once every task has its result), and exits. close
// waits for that, up to wait, then kills the transport.
func (c *conn) close(wait time.Duration) {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.wmu.Lock()
	c.stdin.Close()
	c.wmu.Unlock()
	c.killAfter(wait, c.dead)
}

// killAfter waits for done to be closed: d at most, and then it kills the
// transport and waits on.
func (c *conn) killAfter(d time.Duration, done <-chan struct{}) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		c.kill()
		<-done
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
