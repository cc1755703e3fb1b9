package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/workerpool/workerpool/job"
)

// Options configure a Pool.
type Options struct {
	// Workers is the number of tasks run at once; 0 means one per CPU core.
	// A task takes as many of them as its "cpus" asks for.
	Workers int
	// Memory is how much memory the tasks may reserve ("memory") at once,
	// without Slots, whose hosts say how much they have; 0 is no bound.
	Memory int64
	// Retries is how many more times a failed task is run.
	Retries int
	// Observer, when set, is told of every task's life (see job.Event).
	Observer job.Observer
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
	// Gates hold back each attempt's start (see Gates): a task waits
	// for them before it is told as started, and before each retry. With
	// MemFree, the pool stops the youngest attempt running when the memory
	// available falls below half of it, and runs the task again once the
	// gates let it: a job.Requeued event, but no result, tells of the
	// attempt stopped, which counts in the result's Attempts and not
	// against Retries. Give a pool whose executor has slots on other
	// machines only the Shared gates.
	Gates Gates
}

// MaxWorkers bounds Options.Workers: past it, the children alone would
// exhaust what one machine's process table and file descriptors hold.
const MaxWorkers = 100_000

// maxWaitingResults bounds how many results may wait for the caller to
// receive them. A worker whose result has room to wait starts its next
// task at once, so that a slot is free as soon as its child is reaped
// rather than once the result has been written out.
const maxWaitingResults = 256

// Pool runs tasks on a bounded number of workers. It holds no state between
// runs: Run may be called again, even while another run goes on.
type Pool struct {
	exec Executor
	opts Options
	log  *slog.Logger
}

// NewPool returns a pool that runs tasks with exec. Workers is capped at
// MaxWorkers.
func NewPool(exec Executor, opts Options) *Pool {
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	opts.Workers = min(opts.Workers, MaxWorkers)
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pool{exec: exec, opts: opts, log: log}
}

// Workers reports how many tasks the pool runs at once.
func (p *Pool) Workers() int { return p.opts.Workers }

// Run runs the tasks received on tasks, at most Workers at once, and sends
// exactly one result for each on the returned channel, which Run closes
// after the last one. It receives until tasks is closed; the caller must
// receive every result until the returned channel is closed.
//
// Two contexts stop it. Once intake is done, no task starts: each task
// received from then on, or still waiting for a worker, is answered at once
// with intake's cause as its Err (job.ErrCancelled if it has none). Once ctx is done, the running tasks are
// stopped too. Make intake a child of ctx (or ctx itself), so that stopping
// the tasks also closes the intake.
func (p *Pool) Run(ctx, intake context.Context, tasks <-chan job.Task) <-chan job.Result {
	r := &run{Pool: p, ctx: ctx, intake: intake, out: make(chan job.Result, min(p.opts.Workers, maxWaitingResults)), jobs: make(chan assignment)}
	r.slots, _ = p.exec.(Slots)
	if r.slots == nil {
		r.room = newRoom(p.opts.Workers, p.opts.Memory)
	}
	r.gate, r.guard = newGate(p.opts.Gates), newMemGuard(p.opts.Gates)
	go func() {
		stopGuard := r.startGuard()
		r.feed(tasks)
		close(r.jobs)
		r.workers.Wait()
		stopGuard()
		close(r.out)
	}()
	return r.out
}

// run is one call of Run.
type run struct {
	*Pool
	ctx, intake context.Context
	slots       Slots       // the executor, when it has slots of its own
	room        *room       // of this machine, without slots
	numbers     slotNumbers // of the slots held, with slots
	out         chan job.Result
	jobs        chan assignment // to the workers, who share it
	workers     sync.WaitGroup
	started     int       // workers started so far, by feed
	gate        *gate     // nil when no gate holds back starts
	turns       uint64    // at the gate, handed out so far, by feed
	guard       *memGuard // nil without MemFree
}

// assignment is a task handed to a worker, with the slot it is to run in
// when the executor has slots.
type assignment struct {
	t    *job.Task
	slot *numberedSlot
	turn uint64 // at the gate, when there is one: 1 for the first handed out, and so on
}

// numberedSlot is a slot of the executor's that a task holds, with the
// number that the task's "{%}" names. Release gives back the number, then
// the slot.
type numberedSlot struct {
	Slot
	number  int
	numbers *slotNumbers
}

// Release gives back the slot's number before the slot itself, so that
// no more numbers are taken than slots are held: the task that is given
// the slot next can have the number.
func (s *numberedSlot) Release() {
	s.numbers.give(s.number)
	s.Slot.Release()
}

// slotNumbers hands out the numbers that "{%}" names when the executor has
// slots. A worker cannot number them, as it does without slots: a worker
// that has released its slot may still be sending its result while the
// slot runs the next task on another worker. So each task that holds a
// slot holds a number, from 1 up, that no other task holds: taken once the
// slot is acquired, given back before the slot is released. Since a number
// taken is the lowest free one, or one its task held a moment before, no
// number exceeds the most slots ever held at once. Its methods may be
// called from many goroutines at once.
type slotNumbers struct {
	mu   sync.Mutex
	held []bool // held[n-1]: a task holds number n
}

// take returns want, when it is a number no task holds, or else the lowest
// number no task holds, and holds it until give.
func (s *slotNumbers) take(want int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := want
	if n < 1 || n > len(s.held) || s.held[n-1] {
		n = slices.Index(s.held, false) + 1
		if n == 0 {
			s.held = append(s.held, false)
			n = len(s.held)
		}
	}
	s.held[n-1] = true
	return n
}

// give gives back number n, from take.
func (s *slotNumbers) give(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[n-1] = false
}

// feed hands each task to a free worker once there is room for it (see
// queue), or answers it itself when the task cannot run: it is invalid or
// too large, the intake is closed, or no slot can come. It starts a worker
// when none is free and fewer than Workers run (or, with slots, once the
// task has one), so there are never more workers than tasks received.
func (r *run) feed(tasks <-chan job.Task) {
	q := &queue{maxPassed: r.opts.Workers}
	for {
		var wake <-chan struct{}
		if len(q.tasks) > 0 {
			if r.intake.Err() != nil {
				r.drain(q)
			} else {
				wake = r.startWaiting(q)
			}
		}
		if tasks == nil && len(q.tasks) == 0 {
			return
		}
		var in <-chan job.Task
		if tasks != nil && q.reading() {
			in = tasks
		}
		var intake <-chan struct{}
		if len(q.tasks) > 0 {
			intake = r.intake.Done()
		}
		select {
		case t, ok := <-in:
			if !ok {
				tasks = nil
				continue
			}
			r.admit(q, &t)
		case <-wake:
		case <-q.timerC():
			r.waited(q)
		case <-intake:
		}
	}
}

// admit queues a task read, or answers it when it cannot run: it is
// invalid or larger than this machine, or the intake is closed.
func (r *run) admit(q *queue, t *job.Task) {
	switch {
	case t.Err != nil:
		r.log.Warn("invalid task", "seq", t.Seq, "where", t.Where, "error", t.Err)
		r.emit(t, job.NotRun(t, t.Err))
	case r.intake.Err() != nil:
		r.notRun(t)
	default:
		t.Request.CPUs = max(t.Request.CPUs, 1)
		if r.room != nil {
			if err := r.room.holds(t.Request); err != nil {
				r.noRoom(t, err)
				return
			}
		}
		q.tasks = append(q.tasks, t)
	}
}

// hand gives a to a free worker, starting one when none is free and the
// pool has room for another, or answers its task when the intake closes
// first.
func (r *run) hand(a assignment) {
	if r.gate != nil {
		r.turns++
		a.turn = r.turns
	}
	select {
	case r.jobs <- a:
		return
	default:
	}
	if r.slots != nil || r.started < r.opts.Workers {
		r.started++
		number := r.started
		r.workers.Go(func() { r.work(number) })
	}
	select {
	case r.jobs <- a:
	case <-r.intake.Done():
		r.giveBack(a)
		r.notRun(a.t)
	}
}

// work runs the tasks it receives until the feed closes jobs. The number
// that a task's "{%}" names is the number of its slot when the executor
// has slots (slotNumbers); otherwise it is the worker's number, from 1 to
// Workers, as the feed starts no more workers than that: no two tasks that
// run at once have the same, as a worker runs one task at a time.
func (r *run) work(number int) {
	for a := range r.jobs {
		if r.intake.Err() != nil {
			r.giveBack(a)
			r.notRun(a.t)
			continue
		}
		if a.slot != nil {
			fillSlot(a.t, a.slot.number)
		} else {
			fillSlot(a.t, number)
		}
		res, slot := r.attempt(a.t, a.slot, a.turn)
		r.emitReleasing(a.t, res, slot, a.slot == nil)
	}
}

// attempt runs t, in slot when it has one, again up to Retries more times
// while it fails in a way that another run might change and the intake is
// open. An attempt whose host was lost runs again in another slot, without
// counting against Retries, up to maxHostLosses times, with its "{%}"
// naming the number of its new slot. An attempt the memory guard stopped
// runs again, without counting against Retries, and without bound: it is
// stopped only while memory is short. Each attempt first waits at the
// gate, when there is one, the first in its turn (see gate.wait) so that
// tasks start in the order the feed handed them out; a task that never passes it is answered as not
// run, and a retry that does not pass it leaves the last attempt's result
// as the task's. It returns the result and the slot the task holds at the
// end, if it holds one, for the caller to give back (see emitReleasing).
func (r *run) attempt(t *job.Task, slot *numberedSlot, turn uint64) (job.Result, *numberedSlot) {
	if r.gate != nil {
		if err := r.pass(t, 1, turn); err != nil {
			return r.held(t, err), slot
		}
	}
	if r.log.Enabled(r.ctx, slog.LevelDebug) { // its arguments cost, logged or not
		r.log.Debug("task started", "seq", t.Seq, "identifier", t.Identifier, "command", t.Command, "args", t.Args)
	}
	r.observe(job.Event{Kind: job.Started, Task: t, Attempt: 1, Host: hostOf(slot)})
	lost, requeued := 0, 0
	for n := 1; ; n++ {
		res, stopped := r.execute(t, slot)
		res.Attempts = n
		again := false
		switch {
		case !res.Failed() || r.intake.Err() != nil:
		case stopped:
			requeued++
			again = true
			r.log.Info("task requeued", "seq", t.Seq, "identifier", t.Identifier, "attempt", n+1, "error", errMemoryLow)
			r.observe(job.Event{Kind: job.Requeued, Task: t, Attempt: n, Host: res.Host, Resource: resourceMemFree})
		case errors.Is(res.Err, job.ErrHostLost):
			if lost < maxHostLosses {
				lost++
				if slot, again = r.reacquire(t, slot, &res); again {
					fillSlot(t, slot.number)
				}
			}
		default:
			again = n-lost-requeued <= r.opts.Retries && retryable(&res)
		}
		if again && r.gate != nil && r.pass(t, n+1, 0) != nil {
			again = false
		}
		if !again {
			r.logResult(&res)
			return res, slot
		}
		// The failed attempt's output is not reported: release it.
		res.Close()
		res.Stdout, res.Stderr = job.Output{}, job.Output{}
		if stopped {
			continue
		}
		r.log.Info("task retrying", "seq", t.Seq, "identifier", t.Identifier, "attempt", n+1, "exit_code", res.ExitCode, "error", res.Err)
		r.observe(job.Event{Kind: job.Retrying, Task: t, Attempt: n, Result: &res, Host: res.Host})
	}
}

// execute runs one attempt of t, in slot when it has one, and reports
// whether the memory guard stopped it.
func (r *run) execute(t *job.Task, slot *numberedSlot) (res job.Result, stopped bool) {
	ctx := r.ctx
	var w *watched
	if r.guard != nil {
		ctx, w = r.guard.track(ctx)
		defer func() { stopped = r.guard.end(w) }()
	}
	if slot == nil {
		return r.exec.Execute(ctx, t), false
	}
	res = slot.Execute(ctx, t)
	res.Host = slot.Host()
	return res, false
}

// reacquire gives back the slot of an attempt whose host was lost, and its
// number, and waits for another slot. The new slot has the old number when
// no other task has taken it meanwhile: the number is not held while the
// task waits, as the slots of the lost host may come back, to other tasks,
// before the task has a slot again. When no slot comes, reacquire returns
// nil and false, and adds why to res's error.
func (r *run) reacquire(t *job.Task, old *numberedSlot, res *job.Result) (*numberedSlot, bool) {
	old.Release()
	slot, err := r.acquire(t.Request, old.number)
	if err != nil {
		if r.intake.Err() == nil {
			res.Err = fmt.Errorf("%w; %w", res.Err, err)
		}
		return nil, false
	}
	return slot, true
}

// acquire waits, while the intake is open, for a slot of the executor's
// with room for need, and numbers it want, when no task holds that
// number, or else the lowest number no task holds (slotNumbers). It fails
// as Slots.TryAcquire does, or with the intake's cause.
func (r *run) acquire(need job.Request, want int) (*numberedSlot, error) {
	for {
		slot, wake, _, err := r.slots.TryAcquire(need)
		switch {
		case err != nil:
			return nil, err
		case slot != nil:
			return &numberedSlot{Slot: slot, number: r.numbers.take(want), numbers: &r.numbers}, nil
		}
		select {
		case <-wake:
		case <-r.intake.Done():
			return nil, context.Cause(r.intake)
		}
	}
}

func hostOf(slot *numberedSlot) string {
	if slot == nil {
		return ""
	}
	return slot.Host()
}

// fillSlot writes the slot number n into the words of t that name it
// (job.Task.SlotWords).
func fillSlot(t *job.Task, n int) {
	if t.SlotWords == nil {
		return
	}
	num := strconv.Itoa(n)
	args := slices.Clone(t.Args)
	for i, parts := range t.SlotWords {
		switch {
		case parts == nil:
		case i == 0:
			t.Command = strings.Join(parts, num)
		default:
			args[i-1] = strings.Join(parts, num)
		}
	}
	t.Args = args
}

// retryable reports whether running the task again could change r: a task
// whose command was not found or could not be executed fails the same way.
func retryable(r *job.Result) bool { return r.Started }

// notRun answers a task that the closed intake keeps from starting: its
// Err is the intake's cause, or job.ErrCancelled when there is none.
func (r *run) notRun(t *job.Task) { r.emit(t, r.cancelled(t)) }

// cancelled is the result of a task that the closed intake keeps from
// starting.
func (r *run) cancelled(t *job.Task) job.Result {
	reason := context.Cause(r.intake)
	if reason == r.intake.Err() {
		reason = job.ErrCancelled
	}
	return job.NotRun(t, reason)
}

// noSlot answers a task for which no slot came: the intake closed, or
// every host is gone.
func (r *run) noSlot(t *job.Task, err error) {
	if r.intake.Err() != nil {
		r.notRun(t)
		return
	}
	r.log.Warn("no host to run the task", "seq", t.Seq, "identifier", t.Identifier, "error", err)
	r.emit(t, job.NotRun(t, err))
}

// emitReleasing tells the observer that t has finished, then gives back
// its slot, if it holds one, or, with room, the room it holds on this
// machine, then sends its result: so no other task
// starts in the slot before the observer has heard of the finish, and may
// have closed the intake (a halt).
func (r *run) emitReleasing(t *job.Task, res job.Result, slot *numberedSlot, room bool) {
	r.observe(job.Event{Kind: job.Finished, Task: t, Attempt: res.Attempts, Result: &res, Host: res.Host})
	if slot != nil {
		slot.Release()
	}
	if room {
		r.room.give(t.Request)
	}
	r.out <- res
}

// emit tells the observer that t, which holds no slot, has finished, then
// sends its result.
func (r *run) emit(t *job.Task, res job.Result) { r.emitReleasing(t, res, nil, false) }

func (r *run) observe(ev job.Event) {
	if r.opts.Observer != nil {
		r.opts.Observer.Observe(ev)
	}
}

// logResult logs how a task ended, at a level by how badly; it builds
// nothing for a level the log drops.
func (r *run) logResult(res *job.Result) {
	level, msg := slog.LevelDebug, "task finished"
	switch {
	case res.TimedOut:
		level, msg = slog.LevelWarn, "task timed out"
	case res.Signal != "":
		level, msg = slog.LevelWarn, "task killed"
	case res.Err != nil:
		level, msg = slog.LevelWarn, "task failed"
	case res.ExitCode != 0:
		level, msg = slog.LevelInfo, "task failed"
	}
	if !r.log.Enabled(r.ctx, level) {
		return
	}
	attrs := []any{"seq", res.Seq, "identifier", res.Identifier, "exit_code", res.ExitCode, "duration", res.Duration}
	if res.Signal != "" {
		attrs = append(attrs, "signal", res.Signal)
	}
	if res.Err != nil && !res.TimedOut {
		attrs = append(attrs, "error", res.Err)
	}
	r.log.Log(r.ctx, level, msg, attrs...)
}
