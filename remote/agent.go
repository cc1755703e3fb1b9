package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/job"
)

// AgentOptions configure an agent.
type AgentOptions struct {
	// Version is the agent's own version, told in its hello.
	Version string
	// Local configures how the agent runs tasks. Time limits come with
	// each task; Local.Timeout is not used.
	Local dispatch.LocalOptions
}

// Serve is the agent: it runs the tasks a pool sends on in, at once and
// each on its own (the pool decides how many run), and writes each one's
// reply to out as it ends. When in ends, a write to out fails or ctx is
// done, it stops every task still running, waits for them, and returns:
// nothing it started outlives it. It returns nil when in ended cleanly.
func Serve(ctx context.Context, in io.Reader, out io.Writer, opts AgentOptions) error {
	opts.Local.Timeout = 0
	local, err := dispatch.NewLocal(opts.Local)
	if err != nil {
		return err
	}
	defer local.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := &agent{local: local, running: map[uint64]context.CancelFunc{}, replies: make(chan answer, 64)}
	w := bufio.NewWriterSize(out, 64<<10)
	if err := writeLine(w, hello{Agent: opts.Version, Protocol: Protocol, OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	written := make(chan error, 1)
	go func() { written <- a.write(w, cancel) }()
	read := make(chan error, 1)
	go func() { read <- a.read(ctx, bufio.NewReaderSize(in, 64<<10)) }()
	select {
	case err = <-read:
	case <-ctx.Done():
	}
	cancel()
	a.tasks.Wait()
	close(a.replies)
	return errors.Join(err, <-written)
}

// agent is one run of Serve.
type agent struct {
	local   *dispatch.Local
	tasks   sync.WaitGroup
	replies chan answer // to the writer

	mu      sync.Mutex
	running map[uint64]context.CancelFunc // by request id
}

// answer is a task's result, to be written as a reply.
type answer struct {
	id  uint64
	res job.Result
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
		if q.Cancel {
			a.cancel(q.ID)
			continue
		}
		a.start(ctx, &q)
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
	a.tasks.Go(func() {
		res := a.local.Execute(tctx, t)
		a.mu.Lock()
		delete(a.running, q.ID)
		a.mu.Unlock()
		cancel()
		a.replies <- answer{q.ID, res}
	})
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
// reply waits. After a write fails it stops the agent (stop) and drops the
// rest: the pool is gone.
func (a *agent) write(w *bufio.Writer, stop func()) error {
	var failed error
	for ans := range a.replies {
		if failed == nil {
			failed = writeReply(w, &ans)
			if failed == nil && len(a.replies) == 0 {
				failed = w.Flush()
			}
			if failed != nil {
				stop()
			}
		}
		ans.res.Close()
	}
	return failed
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
	return nil
}
