package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

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
	tr      Transport
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
	// incoming holds what each task that returns files returns, until its
	// reply has come.
	incoming map[uint64]*incoming
	cleanup  bool  // staged files are removed from the host once returned
	closing  bool  // close has been called: the end is no failure
	failure  error // why the pool ended the connection, if it did

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
	cleanup bool      // --cleanup
}

// delivery is a task's result as the agent reported it, with its outputs,
// and when its reply arrived, on the pool's clock.
type delivery struct {
	res     job.Result
	arrived time.Time
}

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
	c := &conn{host: host, tr: tr, cmd: cmd, grace: opts.grace, beat: opts.beat, tempDir: opts.tempDir, cleanup: opts.cleanup,
		stderr: &tail{inherit: opts.inherit}, pending: map[uint64]chan delivery{}, incoming: map[uint64]*incoming{}, exited: make(chan struct{}), dead: make(chan struct{})}
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
	return fmt.Errorf("%s: %w", what, commandError(c.tr, c.waitErr, c.stderr.bytes()))
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

// kill ends the transport at once, in the transport's own way if it has
// one; the agent sees its input end.
func (c *conn) kill() {
	switch k, ok := c.tr.(killer); {
	case c.cmd.Process == nil:
	case ok:
		k.kill(c.cmd)
	default:
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
