package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/internal/sysstat"
	"github.com/workerpool/workerpool/job"
)

// AgentOptions configure an agent.
type AgentOptions struct {
	// Version is the agent's own version, told in its hello.
	Version string
	// Local configures how the agent runs tasks. Time limits and limits
	// come with each task.
	Local dispatch.LocalOptions
	// Gates hold back the start of each task on the agent's host
	// (dispatch.Gates.Host).
	Gates dispatch.Gates
}

// Serve is the agent: it runs the tasks a pool sends on in, at once and
// each on its own (the pool decides how many run), and writes each one's
// reply to out as it ends. When in ends, a write to out fails, the pool
// says nothing for livenessBeats of its heartbeats, or ctx is done, it
// stops every task still running, waits for them, writes their replies
// while the pool takes them (livenessBeats heartbeats at most while it takes
// nothing), and returns: nothing it started outlives it. It returns nil
// when in ended cleanly.
func Serve(ctx context.Context, in io.Reader, out io.Writer, opts AgentOptions) error {
	local, err := dispatch.NewLocal(opts.Local)
	if err != nil {
		return err
	}
	defer local.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a := &agent{exec: dispatch.Gated(local, opts.Gates), running: map[uint64]context.CancelFunc{}, replies: make(chan answer, 64), beats: make(chan time.Duration, 1)}
	a.beat.Store(int64(DefaultHeartbeat))
	a.heard.Store(time.Now().UnixNano())
	a.wrote.Store(time.Now().UnixNano())
	w := bufio.NewWriterSize(agentOutput{out, a}, 64<<10)
	memory, _ := sysstat.ReadMemory("")
	if err := writeLine(w, hello{Agent: opts.Version, Protocol: Protocol, OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Memory: memory.Available}); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	written := make(chan error, 1)
	go func() { written <- a.write(w, func() { cancel(nil) }) }()
	read := make(chan error, 1)
	go func() { read <- a.read(ctx, bufio.NewReaderSize(agentInput{in, a}, 64<<10)) }()
	go a.watch(ctx, cancel)
	select {
	case err = <-read:
	case <-ctx.Done():
		if cause := context.Cause(ctx); errors.Is(cause, errPoolSilent) {
			err = cause
		}
	}
	cancel(nil)
	a.tasks.Wait()
	a.stage.close()
	close(a.replies)
	return errors.Join(err, a.drain(written))
}

// drain waits for the writer to write the last replies and end, and
// returns its error; but while the pool takes nothing, livenessBeats beats
// at most: a pool that has stopped reading will not read them, and the
// agent must end all the same.
func (a *agent) drain(written <-chan error) error {
	for {
		beat := time.Duration(a.beat.Load())
		timer := time.NewTimer(beat)
		select {
		case err := <-written:
			timer.Stop()
			return err
		case <-timer.C:
		}
		if time.Since(time.Unix(0, a.wrote.Load())) > livenessBeats*beat {
			return errors.New("the pool has stopped reading")
		}
	}
}

// errPoolSilent ends an agent whose pool has said nothing for
// livenessBeats heartbeats.
var errPoolSilent = errors.New("the pool has gone silent")

// agent is one run of Serve.
type agent struct {
	exec    dispatch.Executor // a dispatch.Local, behind the host's gates
	tasks   sync.WaitGroup
	replies chan answer        // to the writer
	beats   chan time.Duration // a heartbeat interval the pool named, to the writer
	beat    atomic.Int64       // the heartbeat interval, in nanoseconds
	heard   atomic.Int64       // when a byte last came from the pool, in Unix nanoseconds
	wrote   atomic.Int64       // when a write to the pool last went through, in Unix nanoseconds

	stage stageRoot // files staged for tasks

	mu      sync.Mutex
	running map[uint64]context.CancelFunc // by request id
}

// agentInput reads the pool's requests, noting when bytes come.
type agentInput struct {
	r io.Reader
	a *agent
}

func (in agentInput) Read(p []byte) (int, error) {
	n, err := in.r.Read(p)
	if n > 0 {
		in.a.heard.Store(time.Now().UnixNano())
	}
	return n, err
}

// agentOutput writes to the pool, noting when writes go through.
type agentOutput struct {
	w io.Writer
	a *agent
}

func (out agentOutput) Write(p []byte) (int, error) {
	n, err := out.w.Write(p)
	out.a.wrote.Store(time.Now().UnixNano())
	return n, err
}

// watch ends the agent (stop) once the pool has said nothing for
// livenessBeats beats: the pool is frozen, or its host is unreachable.
func (a *agent) watch(ctx context.Context, stop context.CancelCauseFunc) {
	for {
		beat := time.Duration(a.beat.Load())
		timer := time.NewTimer(beat)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
		if time.Since(time.Unix(0, a.heard.Load())) > livenessBeats*beat {
			stop(errPoolSilent)
			return
		}
	}
}

// answer is a task's result, to be written as a reply, or with line a
// line of a file it returns, and the data that follows it.
type answer struct {
	id   uint64
	res  job.Result
	line *reply
	data []byte
}

// read starts each task requested on r and cancels those asked, until r
// ends (io.EOF is a clean end, and nil is returned) or ctx is done.
func (a *agent) read(ctx context.Context, r *bufio.Reader) error {
	for ctx.Err() == nil {
		var q request
		if err := readLine(r, &q); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("reading requests: %w", err)
		}
		switch {
		case q.Heartbeat > 0:
			if d := time.Duration(q.Heartbeat); d != time.Duration(a.beat.Swap(int64(d))) {
				select {
				case a.beats <- d:
				default:
				}
			}
		case q.Cancel:
			a.cancel(q.ID)
			a.stage.drop(q.ID) // files put for a task not sent
		case q.Put != "" || q.Data > 0:
			if err := a.stage.put(&q, r); err != nil {
				return fmt.Errorf("reading requests: %w", err)
			}
		default:
			a.start(ctx, &q)
		}
	}
	return nil
}

// start runs the task q asks for, on its own.
func (a *agent) start(ctx context.Context, q *request) {
	tctx, cancel := context.WithCancel(ctx)
	a.mu.Lock()
	a.running[q.ID] = cancel
	a.mu.Unlock()
	t := q.task()
	var st *stagedTask
	if q.Staged {
		st = a.stage.take(q.ID)
	}
	a.tasks.Go(func() {
		run := func(t *job.Task) job.Result { return a.exec.Execute(tctx, t) }
		var res job.Result
		if st != nil {
			res = a.runStaged(tctx, run, t, q, st)
		} else {
			res = run(t)
		}
		a.mu.Lock()
		delete(a.running, q.ID)
		a.mu.Unlock()
		cancel()
		a.send(ctx, answer{id: q.ID, res: res})
	})
}

// send hands ans to the writer and reports true, or reports false when
// the replies are full and ctx, the agent's run, ends first: a pool that
// reads no more (frozen, or cut off) leaves them full, and the agent must
// end all the same.
func (a *agent) send(ctx context.Context, ans answer) bool {
	select {
	case a.replies <- ans:
		return true
	default:
	}
	select {
	case a.replies <- ans:
		return true
	case <-ctx.Done():
		return false
	}
}

// cancel stops task id, if it still runs.
func (a *agent) cancel(id uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cancel, ok := a.running[id]; ok {
		cancel()
	}
}

// write writes each reply and its outputs to w, flushing whenever no other
// reply waits, and a heartbeat every beat. After a write fails it stops the
// agent (stop) and drops the rest: the pool is gone.
func (a *agent) write(w *bufio.Writer, stop func()) error {
	tick := time.NewTicker(time.Duration(a.beat.Load()))
	defer tick.Stop()
	var failed error
	try := func(write func() error) {
		if failed == nil {
			if failed = write(); failed != nil {
				stop()
			}
		}
	}
	for {
		select {
		case d := <-a.beats:
			tick.Reset(d)
		case <-tick.C:
			try(func() error {
				if err := writeLine(w, reply{Heartbeat: true}); err != nil {
					return err
				}
				return w.Flush()
			})
		case ans, ok := <-a.replies:
			if !ok {
				return failed
			}
			try(func() error {
				write := writeReply
				if ans.line != nil {
					write = writeFileLine
				}
				if err := write(w, &ans); err != nil || len(a.replies) > 0 {
					return err
				}
				return w.Flush()
			})
			ans.res.Close()
		}
	}
}

// writeFileLine writes a line of a returned file, and its data.
func writeFileLine(w *bufio.Writer, ans *answer) error {
	if ans.line.Data > 0 {
		return writeData(w, ans.line, ans.data)
	}
	return writeLine(w, ans.line)
}

func writeReply(w *bufio.Writer, ans *answer) error {
	rep := replyOf(ans.id, &ans.res)
	if err := writeLine(w, rep); err != nil {
		return err
	}
	for _, o := range []job.Output{ans.res.Stdout, ans.res.Stderr} {
		if n, err := io.Copy(w, o.Reader()); err != nil || n != o.Len() {
			return fmt.Errorf("writing output: %d of %d bytes: %w", n, o.Len(), err)
		}
	}
	return w.WriteByte('\n')
}
