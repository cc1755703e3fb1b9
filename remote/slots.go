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

// Acquire waits for a free slot: on the host with the most room for its
// size, so that work spreads over every host. It fails when ctx is done,
// or when every host is down.
func (c *Cluster) Acquire(ctx context.Context) (dispatch.Slot, error) {
	for {
		c.mu.Lock()
		if s := c.pickLocked(); s != nil {
			c.mu.Unlock()
			return s, nil
		}
		if err := c.noHostLocked(); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// pickLocked takes a free slot on the host that has the most room for its
// size, or returns nil.
func (c *Cluster) pickLocked() *slot {
	var best *host
	n := len(c.hosts)
	for i := range n {
		h := c.hosts[(c.turn+i)%n]
		if h.state != up || h.removed || h.busy >= h.slots || h.conn.isDead() {
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
	best.busy++
	return &slot{c: c, h: best, conn: best.conn}
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
	h.busy--
	if h.removed && h.busy == 0 && h.conn != nil { // this machine has no agent to close
		c.drainLocked(h)
	}
	c.changedLocked()
}

// Execute runs t in the first free slot.
func (c *Cluster) Execute(ctx context.Context, t *job.Task) job.Result {
	s, err := c.Acquire(ctx)
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

// slot is room for one task on a host.
type slot struct {
	c    *Cluster
	h    *host
	conn *conn // nil on this machine
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
