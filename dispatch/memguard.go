package dispatch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/workerpool/workerpool/internal/sysstat"
)

// memSettle is how long the guard lets the memory settle after a stopped
// attempt has ended before it stops another.
const memSettle = time.Second

// errMemoryLow is the cause of an attempt stopped to free memory.
var errMemoryLow = errors.New("stopped to free memory (--memfree)")

// memGuard stops the youngest attempt running whenever the memory
// available falls below its floor, half of Gates.MemFree, as GNU parallel's
// --memfree does: the task runs again later, once its gate lets it. One
// attempt at a time is stopped: the next only once that one has ended, and
// memSettle has passed for the memory it held to come back, and the
// memory is still low. Its methods may be called from many goroutines at
// once.
type memGuard struct {
	floor  int64
	memory func() (sysstat.Memory, error)

	mu       sync.Mutex
	running  []*watched // in the order they started
	stopping *watched   // stopped, and not yet ended
	calm     time.Time  // no attempt is stopped before then
}

// watched is an attempt the guard may stop.
type watched struct {
	cancel  context.CancelCauseFunc
	stopped bool
}

// newMemGuard returns the guard of gates, or nil when they have no
// MemFree.
func newMemGuard(gates Gates) *memGuard {
	if gates.MemFree <= 0 {
		return nil
	}
	g := &memGuard{floor: gates.MemFree / 2, memory: gates.Memory}
	if g.memory == nil {
		g.memory = func() (sysstat.Memory, error) { return sysstat.ReadMemory("") }
	}
	return g
}

// track returns the context to run an attempt in, which the guard
// cancels to stop it, and the attempt's handle for end.
func (g *memGuard) track(ctx context.Context) (context.Context, *watched) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watched{cancel: cancel}
	g.mu.Lock()
	g.running = append(g.running, w)
	g.mu.Unlock()
	return ctx, w
}

// end forgets the attempt w, which has ended, and reports whether the
// guard stopped it.
func (g *memGuard) end(w *watched) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i := slices.Index(g.running, w); i >= 0 {
		g.running = slices.Delete(g.running, i, i+1)
	}
	if g.stopping == w {
		g.stopping = nil
		g.calm = time.Now().Add(memSettle)
	}
	w.cancel(nil)
	return w.stopped
}

// watch looks at the memory every gatePoll until ctx is done, and stops
// the youngest attempt when it is below the floor.
func (g *memGuard) watch(ctx context.Context) {
	tick := time.NewTicker(gatePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			g.check()
		}
	}
}

// check stops the youngest attempt, when the memory is below the floor
// and no attempt stopped before is still ending. An attempt that is the
// only one running is stopped too: the memory it frees may be what keeps
// the machine alive.
func (g *memGuard) check() {
	m, err := g.memory()
	if err != nil || m.Available >= g.floor {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopping != nil || len(g.running) == 0 || time.Now().Before(g.calm) {
		return
	}
	w := g.running[len(g.running)-1]
	w.stopped = true
	g.stopping = w
	w.cancel(errMemoryLow)
}
