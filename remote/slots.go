package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/job"
)

// Acquire waits for room for need: on the host with the most room for its
// size, so that work spreads over every host. It fails when ctx is done,
// or as TryAcquire does.
func (c *Cluster) Acquire(ctx context.Context, need job.Request) (dispatch.Slot, error) {
	for {
		s, wake, _, err := c.TryAcquire(need)
		if s != nil || err != nil {
			return s, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// TryAcquire takes room for need on the host that has the most slots free
// for its size among those with room for need (see dispatch.Slots). A
// task that no host can ever hold fails: one that asks for more slots or
// memory than every host has, decided on the hosts known now, once none
// is being connected to for the first time.
func (c *Cluster) TryAcquire(need job.Request) (dispatch.Slot, <-chan struct{}, string, error) {
	need.CPUs = max(need.CPUs, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.pickLocked(need); s != nil {
		return s, nil, "", nil
	}
	if err := c.noHostLocked(); err != nil {
		return nil, nil, "", err
	}
	if err := c.tooLargeLocked(need); err != nil {
		return nil, nil, "", err
	}
	return nil, c.changed, c.shortLocked(need), nil
}

// pickLocked takes room for need on the host that has the most room for
// its size, or returns nil.
func (c *Cluster) pickLocked(need job.Request) *slot {
	var best *host
	n := len(c.hosts)
	for i := range n {
		h := c.hosts[(c.turn+i)%n]
		if h.state != up || h.removed || h.busy+need.CPUs > h.slots || h.conn.isDead() ||
			h.memory > 0 && h.reserved+need.Memory > h.memory {
			continue
		}
		// Less busy for its size: h.busy/h.slots < best.busy/best.slots.
		if best == nil || h.busy*best.slots < best.busy*h.slots {
			best = h
		}
	}
	if best == nil {
		return nil
	}
	c.turn++
	best.busy += need.CPUs
	best.reserved += need.Memory
	return &slot{c: c, h: best, conn: best.conn, need: need}
}

// tooLargeLocked returns the error of a task that asks for more than any
// host has, or nil when some host has room for it, or may have: a host
// whose size is not known yet, being connected to for the first time.
func (c *Cluster) tooLargeLocked(need job.Request) error {
	var most, mem *host
	for _, h := range c.hosts {
		slots := h.knownSlots()
		switch {
		case h.removed:
			continue
		case slots == 0:
			if h.state == connecting {
				return nil
			}
			continue
		case need.CPUs <= slots && (h.memory == 0 || need.Memory <= h.memory):
			return nil
		}
		if most == nil || slots > most.knownSlots() {
			most = h
		}
		if h.memory > 0 && (mem == nil || h.memory > mem.memory) {
			mem = h
		}
	}
	if most == nil {
		return nil
	}
	if mem == nil || most.memory == 0 {
		return dispatch.TooLarge(need, most.knownSlots(), most.name, 0, "")
	}
	return dispatch.TooLarge(need, most.knownSlots(), most.name, mem.memory, mem.name)
}

// shortLocked names what need waits for: slots, when no host up has
// enough of them free, or else memory.
func (c *Cluster) shortLocked(need job.Request) string {
	for _, h := range c.hosts {
		if h.state == up && !h.removed && h.busy+need.CPUs <= h.slots {
			return job.ResourceMemory
		}
	}
	return job.ResourceCPUs
}

// noHostLocked returns the error that no slot can come, when every host is
// down and none is being connected to; nil otherwise. When every host is
// down because its allocation has ended, the error says only that.
func (c *Cluster) noHostLocked() error {
	var why []string
	var ended error
	for _, h := range c.hosts {
		if h.removed {
			continue
		}
		if h.state != down {
			return nil
		}
		if errors.Is(h.err, ErrAllocationEnded) {
			ended = h.err
		}
		why = append(why, fmt.Sprintf("%s: %v", h.name, h.err))
	}
	switch {
	case len(why) == 0:
		return errors.New("no host left to run on: the login file names none")
	case ended != nil:
		return ended
	}
	return fmt.Errorf("no host left to run on (%s)", strings.Join(why, "; "))
}

// release gives a slot back, of the host's conn or of one since lost. A
// removed host whose last task has ended is closed.
func (c *Cluster) release(s *slot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := s.h
	h.busy -= s.need.CPUs
	h.reserved -= s.need.Memory
	if h.removed && h.busy == 0 && h.conn != nil { // this machine has no agent to close
		c.drainLocked(h)
	}
	c.changedLocked()
}

// Execute runs t in the first slot with room for it.
func (c *Cluster) Execute(ctx context.Context, t *job.Task) job.Result {
	s, err := c.Acquire(ctx, t.Request)
	if err != nil {
		if ctx.Err() != nil {
			err = job.ErrCancelled
		}
		return job.NotRun(t, err)
	}
	defer s.Release()
	res := s.Execute(ctx, t)
	res.Host = s.Host()
	return res
}

// slot is room for one task on a host: the slots and memory it needs.
type slot struct {
	c    *Cluster
	h    *host
	conn *conn // nil on this machine
	need job.Request
	once sync.Once
}

func (s *slot) Host() string { return s.h.name }

func (s *slot) Execute(ctx context.Context, t *job.Task) job.Result {
	if s.conn == nil {
		return s.c.opts.Here.Execute(ctx, t)
	}
	return s.conn.run(ctx, t)
}

func (s *slot) Release() { s.once.Do(func() { s.c.release(s) }) }

// Memory is the memory of the hosts up, as their agents said it, that
// tasks may reserve; hosts that did not say count for none.
func (c *Cluster) Memory() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, h := range c.hosts {
		if h.state == up && !h.removed {
			n += h.memory
		}
	}
	return n
}
