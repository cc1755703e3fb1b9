package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/workerpool/workerpool/internal/sysstat"
	"github.com/workerpool/workerpool/job"
)

// Gates hold back the starts of tasks: until the machine has memory to
// spare or is not too loaded, and so that starts come no faster than a
// rate. The zero value holds back nothing.
type Gates struct {
	// MemFree: no task starts while less memory than this is available,
	// in bytes. In a Pool, below half of it the youngest task running is
	// stopped and runs again later (see Options.Gates).
	MemFree int64
	// Load: no task starts while the load average over the last minute is
	// this or more.
	Load float64
	// Delay is the least time between two starts.
	Delay time.Duration
	// Rate is the most starts a second, as a token bucket that holds one:
	// never more than Rate starts in any second, plus one.
	Rate float64
	// Memory reads the memory available; nil reads this machine's.
	Memory func() (sysstat.Memory, error)
	// LoadAverage reads the load average; nil reads this machine's.
	LoadAverage func() (float64, error)
}

// On reports whether any gate holds back starts.
func (g *Gates) On() bool { return g.MemFree > 0 || g.Load > 0 || g.Delay > 0 || g.Rate > 0 }

// Host returns the gates that each host keeps for itself: MemFree and
// Load, which are about the machine a task runs on.
func (g Gates) Host() Gates {
	g.Delay, g.Rate = 0, 0
	return g
}

// Shared returns the gates that the starts of a whole pool pass, wherever
// its tasks run: Delay and Rate, since what they protect (an API, a
// server) is usually one.
func (g Gates) Shared() Gates { return Gates{Delay: g.Delay, Rate: g.Rate} }

// The resources a task may wait for, as events name them.
const (
	resourceMemFree = "memfree"
	resourceLoad    = "load"
	resourceDelay   = "delay"
	resourceRate    = "rate"
)

// gatePoll is how often a gate that holds back a start looks at the
// memory and the load again, and how often a pool with MemFree looks
// whether to stop a task.
const gatePoll = 250 * time.Millisecond

// waitNotice is how long a task waits, at a gate or for room, before the
// wait is told (job.Waiting).
const waitNotice = time.Second

// gate is Gates made ready to hold back starts. Its methods may be called
// from many goroutines at once.
type gate struct {
	memFree  int64
	load     float64
	memory   func() (sysstat.Memory, error)
	loadAvg  func() (float64, error)
	limiters []limiter

	// The turns of the first attempts, so that tasks pass in the order
	// the feed handed them out (see turnOf), not in the order their
	// workers happen to reach the gate.
	mu   sync.Mutex
	next uint64        // the turn that may pass now
	turn chan struct{} // closed when next moves on
}

// limiter spaces starts out.
type limiter struct {
	*rate.Limiter
	resource string
}

// newGate returns the gate of g, or nil when g holds back nothing, so
// that a run without gates pays one nil check per start.
func newGate(g Gates) *gate {
	if !g.On() {
		return nil
	}
	gt := &gate{memFree: g.MemFree, load: g.Load, memory: g.Memory, loadAvg: g.LoadAverage, next: 1, turn: make(chan struct{})}
	if gt.memory == nil {
		gt.memory = func() (sysstat.Memory, error) { return sysstat.ReadMemory("") }
	}
	if gt.loadAvg == nil {
		gt.loadAvg = func() (float64, error) { return sysstat.ReadLoad("") }
	}
	if g.Delay > 0 {
		gt.limiters = append(gt.limiters, limiter{rate.NewLimiter(rate.Every(g.Delay), 1), resourceDelay})
	}
	if g.Rate > 0 {
		gt.limiters = append(gt.limiters, limiter{rate.NewLimiter(rate.Limit(g.Rate), 1), resourceRate})
	}
	return gt
}

// held returns the resource that holds back starts now, or "" when none
// does. It fails when the memory or the load cannot be read, or when
// MemFree is more than the machine's memory, which no wait would change.
func (g *gate) held() (string, error) {
	if g.memFree > 0 {
		m, err := g.memory()
		switch {
		case err != nil:
			return "", fmt.Errorf("--memfree: %w", err)
		case g.memFree > m.Total:
			return "", fmt.Errorf("--memfree %s is more than the memory of the machine, %s", sizeText(g.memFree), sizeText(m.Total))
		case m.Available < g.memFree:
			return resourceMemFree, nil
		}
	}
	if g.load > 0 {
		load, err := g.loadAvg()
		switch {
		case err != nil:
			return "", fmt.Errorf("--load: %w", err)
		case load >= g.load:
			return resourceLoad, nil
		}
	}
	return "", nil
}

// wait blocks until the gate lets a task start: first until neither the
// memory nor the load holds it back, then for its turn under each rate.
// When the task has waited longer than waitNotice, wait calls waiting,
// once, with the resource it waits for then. It fails with ctx's error
// when ctx is done first, or as held does.
//
// A turn above 0 is the task's place in the order of first attempts
// (1, 2, ...): it waits for the turns before it to have passed, or failed,
// first, and it must be waited for once, unless ctx is done, since the
// turns after it wait for it. Turn 0 (a task run again) takes no turn.
func (g *gate) wait(ctx context.Context, turn uint64, waiting func(resource string)) error {
	w := waiter{ctx: ctx, waiting: waiting}
	if turn > 0 {
		if err := g.awaitTurn(&w, turn); err != nil {
			return err
		}
		defer g.passed(turn)
	}
	for {
		resource, err := g.held()
		if err != nil {
			return err
		}
		if resource == "" {
			break
		}
		if err := w.sleep(gatePoll, resource); err != nil {
			return err
		}
	}
	for _, l := range g.limiters {
		res := l.Reserve() // a burst of 1 is always possible
		if err := w.sleep(res.Delay(), l.resource); err != nil {
			res.Cancel()
			return err
		}
	}
	return nil
}

// awaitTurn waits until turn may pass, or until w's context is done. A
// task waiting behind others waits for what they wait for.
func (g *gate) awaitTurn(w *waiter, turn uint64) error {
	for {
		g.mu.Lock()
		next, moved := g.next, g.turn
		g.mu.Unlock()
		if next >= turn {
			return nil
		}
		if err := w.until(moved, g.resource()); err != nil {
			return err
		}
	}
}

// passed lets the turn after turn pass.
func (g *gate) passed(turn uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if turn >= g.next {
		g.next = turn + 1
		close(g.turn)
		g.turn = make(chan struct{})
	}
}

// resource names what a task waits for behind the tasks before it: the
// first of the gate's flags.
func (g *gate) resource() string {
	switch {
	case g.memFree > 0:
		return resourceMemFree
	case g.load > 0:
		return resourceLoad
	}
	return g.limiters[0].resource
}

// waiter is one wait at a gate.
type waiter struct {
	ctx     context.Context
	waiting func(resource string)
	start   time.Time // of the first sleep
	told    bool      // waiting has been called
}

// sleep waits for d, or until ctx is done, and calls waiting when the
// wait as a whole passes waitNotice meanwhile. When ctx is done first, it
// fails with a heldError.
func (w *waiter) sleep(d time.Duration, resource string) error {
	if d <= 0 {
		return nil
	}
	now := time.Now()
	if w.start.IsZero() {
		w.start = now
	}
	if left := waitNotice - now.Sub(w.start); !w.told && left < d {
		if err := sleep(w.ctx, left); err != nil {
			return &heldError{resource, err}
		}
		w.told = true
		w.waiting(resource)
		d -= max(left, 0)
	}
	if err := sleep(w.ctx, d); err != nil {
		return &heldError{resource, err}
	}
	return nil
}

// until waits until ch is closed, or until ctx is done, and calls waiting
// when the wait as a whole passes waitNotice meanwhile, as sleep does.
func (w *waiter) until(ch <-chan struct{}, resource string) error {
	now := time.Now()
	if w.start.IsZero() {
		w.start = now
	}
	var notice <-chan time.Time
	if !w.told {
		t := time.NewTimer(waitNotice - now.Sub(w.start))
		defer t.Stop()
		notice = t.C
	}
	for {
		select {
		case <-ch:
			return nil
		case <-w.ctx.Done():
			return &heldError{resource, w.ctx.Err()}
		case <-notice:
			w.told, notice = true, nil
			w.waiting(resource)
		}
	}
}

// heldError is a wait at a gate cut short: Err, ctx's error, came while
// resource held the task back.
type heldError struct {
	resource string
	err      error
}

func (e *heldError) Error() string { return "held back by --" + e.resource + ": " + e.err.Error() }

func (e *heldError) Unwrap() error { return e.err }

// sleep waits for d, or until ctx is done, and then fails with its error.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gated is an Executor whose tasks wait at a gate before they run.
type gated struct {
	Executor
	gate *gate
}

// Gated returns exec with each task held back until gates let it start.
// It is how a host that runs the tasks a pool gives it keeps its own
// gates (Gates.Host). A task's time limit counts from the start of its
// wait, so that the host answers within it as the pool expects: a task
// still held back when it runs out has timed out without starting, and
// one that starts runs for what is left of it. A task whose wait ctx cuts
// short has job.ErrCancelled as its Err; one whose gate cannot open, say
// because MemFree is more than the machine has, says why. Waits are not
// told.
func Gated(exec Executor, gates Gates) Executor {
	g := newGate(gates)
	if g == nil {
		return exec
	}
	return &gated{Executor: exec, gate: g}
}

func (g *gated) Execute(ctx context.Context, t *job.Task) job.Result {
	waitCtx := ctx
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	begin := time.Now()
	if err := g.gate.wait(waitCtx, 0, func(string) {}); err != nil {
		res := job.NotRun(t, err)
		var held *heldError
		switch {
		case ctx.Err() != nil:
			res.Err = job.ErrCancelled
		case errors.As(err, &held):
			res.ExitCode, res.TimedOut = job.ExitTimedOut, true
			res.Err = fmt.Errorf("timed out after %s without starting: --%s held it back", t.Timeout, held.resource)
		}
		return res
	}
	if t.Timeout > 0 {
		rest := *t
		rest.Timeout = max(t.Timeout-time.Since(begin), time.Millisecond)
		t = &rest
	}
	return g.Executor.Execute(ctx, t)
}

// sizeText writes a number of bytes as a size is read (job.ParseSize),
// in the largest unit it has one or more of, down to a tenth: 1.5G.
func sizeText(n int64) string {
	units := "KMGTP"
	v, unit := float64(n), ""
	for i := 0; v >= 1024 && i < len(units); i++ {
		v /= 1024
		unit = units[i : i+1]
	}
	return strconv.FormatFloat(math.Floor(v*10)/10, 'f', -1, 64) + unit
}

// pass waits until the run's gate lets attempt n of t start (gate.wait),
// telling the observer when the wait is long (job.Waiting). It fails when
// the intake closes first, or the gate cannot open.
func (r *run) pass(t *job.Task, n int, turn uint64) error {
	return r.gate.wait(r.intake, turn, func(resource string) {
		r.log.Info("task waiting", "seq", t.Seq, "identifier", t.Identifier, "for", resource)
		r.observe(job.Event{Kind: job.Waiting, Task: t, Attempt: n, Resource: resource})
	})
}

// held is the result of a task that never passed the gate, for err: its
// intake closed, or the gate cannot open.
func (r *run) held(t *job.Task, err error) job.Result {
	if r.intake.Err() != nil {
		return r.cancelled(t)
	}
	r.log.Warn("task held back", "seq", t.Seq, "identifier", t.Identifier, "error", err)
	return job.NotRun(t, err)
}

// startGuard starts watching the memory, with MemFree, and returns what
// stops the watch.
func (r *run) startGuard() (stop func()) {
	if r.guard == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.guard.watch(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
