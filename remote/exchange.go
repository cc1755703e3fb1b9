package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/workerpool/workerpool/internal/spool"
	"github.com/workerpool/workerpool/job"
)

// run runs t on the agent and waits for its result. When ctx is done it
// asks the agent to stop the task, and waits for that. When the agent is
// lost first, the result's Err wraps job.ErrHostLost.
//
// Every wait is bounded: a cancel unanswered within the grace and
// replyMargin, or a task that outlives its time limit by as much, ends
// the connection, and a dead connection answers every task at once.
func (c *conn) run(ctx context.Context, t *job.Task) job.Result {
	res := job.Result{Seq: t.Seq, Identifier: t.Identifier, Meta: t.Meta, ExitCode: job.ExitNeverStarted}
	stage, err := stageOf(t)
	if err != nil {
		res.Err = err
		return res
	}
	id, got := c.register()
	q := taskRequest(id, t)
	if stage != nil {
		c.expect(id, stage)
		defer c.dropIncoming(id)
		q.Staged, q.Return, q.Cleanup = true, stage.order, c.cleanup
		local, err := c.sendFiles(ctx, id, stage)
		stage.close() // sent: not held open while the task runs
		if local != nil {
			// The agent drops the files put for a task that is cancelled
			// before it is sent.
			c.unregister(id)
			if err := c.send(request{ID: id, Cancel: true}); err != nil {
				c.fail(fmt.Errorf("cannot send a cancel: %w", err))
			}
			res.Err = local
			return res
		}
		if err != nil {
			c.fail(fmt.Errorf("cannot send a file: %w", err))
		}
	}
	sent := time.Now()
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
			return c.answer(t, &q, d.timed(sent), late, done == nil)
		case <-c.dead:
			select { // the reader delivers every reply before it closes dead
			case d := <-got:
				return c.answer(t, &q, d.timed(sent), late, done == nil)
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
			if c.isPending(id) && !c.isReturning(id) { // not while its files or its reply's outputs come
				c.fail(fmt.Errorf("no answer to a cancel within %s", c.grace+replyMargin))
			}
		case <-overdue:
			// An agent still beating lets a task outlive its limit: the task
			// timed out. One silent too is lost, as the watch would find.
			overdue = nil
			if !c.isPending(id) || c.isReturning(id) { // it has ended there, and its files or outputs are coming
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

// timed returns the delivered result, for a task sent at sent, with its
// StartedAt on the pool's clock, as the host's clock may differ: its
// Duration before the reply arrived, but not before the task was sent.
func (d *delivery) timed(sent time.Time) *job.Result {
	if d.res.Started {
		d.res.StartedAt = d.arrived.Add(-d.res.Duration)
		if d.res.StartedAt.Before(sent) {
			d.res.StartedAt = sent
		}
	}
	return &d.res
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

// sendData writes q, the line of a chunk of data, followed by data, and
// flushes them, as send does.
func (c *conn) sendData(q request, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.stdin.SetWriteDeadline(time.Now().Add(livenessBeats * c.beat))
	if err := writeData(c.w, q, data); err != nil {
		return err
	}
	return c.w.Flush()
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
		if rep.File != "" || rep.Data > 0 {
			if err := c.receiveFile(&rep); err != nil {
				return err
			}
			continue
		}
		arrived := time.Now()
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
		if in := c.takeIncoming(rep.ID); in != nil {
			in.finish()
			d.res.Err = errors.Join(append([]error{d.res.Err}, in.errs...)...)
			if !in.ended.IsZero() {
				arrived = in.ended // the task ended before its files came back
			}
		}
		d.arrived = arrived
		ch <- d // never blocks: each channel has room for its one reply
	}
}

// receive reads the outputs that follow rep, and the line break after them. Output that cannot be kept
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
	switch end, err := c.stdout.ReadByte(); {
	case err != nil:
		d.res.Close()
		return delivery{}, io.ErrUnexpectedEOF
	case end != '\n':
		d.res.Close()
		return delivery{}, fmt.Errorf("a reply's outputs end in %q, not a line break", end)
	}
	return d, nil
}
