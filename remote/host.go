package remote

import (
	"errors"
	"runtime"
	"time"

	"github.com/workerpool/workerpool/internal/sysstat"
)

// host is one login and the state of its agent.
type host struct {
	Login
	name string // as results name it

	// Guarded by Cluster.mu.
	state    hostState
	conn     *conn // while up
	slots    int   // while up, and after, as last known
	busy     int   // slots tasks hold, until they give them back: of a conn since lost too
	memory   int64 // the memory its agent said it has, last known; 0: not known, no bound
	reserved int64 // memory tasks hold, as busy
	err      error // why it is down
	failures int   // connections failed in a row
	removed  bool  // left the hosts' source: it takes no more tasks
}

// hostState is where a host is in its life:
//
//	connecting → up      connect: the agent said hello
//	connecting → down    markDownLocked: it did not, and is tried again after a backoff
//	down → connecting    the backoff has passed
//	up → connecting      lost: the connection ended, and is tried again at once or after a pause
//	up → down            lost or drainLocked: the connection was closed on purpose
type hostState int

const (
	connecting hostState = iota
	up
	down // until it is tried again
)

// knownSlots is how many slots h has, as far as is known: as many as
// when it was last up, or else as many as its login names; 0 when neither
// tells.
func (h *host) knownSlots() int {
	if h.slots > 0 {
		return h.slots
	}
	return h.Login.slots
}

// addLocked adds a host and starts connecting to it.
func (c *Cluster) addLocked(l Login) {
	h := &host{Login: l, name: l.dest}
	c.hosts = append(c.hosts, h)
	if l.dest == Here {
		h.state, h.slots = up, l.slots
		if h.slots == 0 {
			h.slots = runtime.NumCPU()
		}
		if m, err := sysstat.ReadMemory(""); err == nil {
			h.memory = m.Available
		}
		c.changedLocked()
		return
	}
	h.state = connecting
	c.spawnLocked(func() { c.connect(h) })
}

// drainLocked closes the agent of a host that takes no more tasks, on its
// own.
func (c *Cluster) drainLocked(h *host) {
	cn := h.conn
	h.conn, h.state = nil, down
	c.drains.Go(func() { cn.close(c.closeWait()) })
}

// connect starts the agent on h, and marks h up or down.
func (c *Cluster) connect(h *host) {
	path := c.opts.RemotePath
	var err error
	if c.opts.Push {
		path, err = push(c.ctx, c.transport, h.dest, c.opts.PushKeep)
	}
	var cn *conn
	if err == nil {
		opts := connOptions{grace: c.opts.Grace, beat: c.opts.Heartbeat,
			tempDir: c.opts.TempDir, inherit: c.inherit(), cleanup: c.opts.Cleanup}
		cn, err = dial(c.ctx, c.transport, h.name, h.dest, c.agentArgv(path), opts, func(cn *conn) { c.lost(h, cn) })
	}
	if e, ok := c.transport.(ender); ok && err != nil {
		if end := e.ended(); end != nil {
			err = end
		}
	}
	c.mu.Lock()
	if err != nil {
		c.markDownLocked(h, err)
		c.mu.Unlock()
		return
	}
	if h.removed || c.closed {
		c.mu.Unlock()
		cn.close(c.closeWait())
		return
	}
	defer c.mu.Unlock()
	select {
	case <-cn.dead: // ended before it was up: lost could not tell
		c.markDownLocked(h, cn.err)
		return
	default:
	}
	h.state, h.conn, h.err, h.failures = up, cn, nil, 0
	h.slots = h.Login.slots
	if h.slots == 0 {
		h.slots = max(cn.hello.CPUs, 1)
	}
	h.memory = max(cn.hello.Memory, 0)
	c.log.Info("host up", "host", h.name, "slots", h.slots, "memory", h.memory, "agent", cn.hello.Agent, "os", cn.hello.OS, "arch", cn.hello.Arch)
	c.changedLocked()
}

// lost is told by a conn whose agent ended. Unless it was closed on
// purpose, the host is tried again: at once when the connection dropped,
// which is not yet a host that is down; after a backoff when the pool
// ended it, for an agent that broke the protocol or went silent.
func (c *Cluster) lost(h *host, cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.conn != cn {
		return
	}
	h.conn = nil // its tasks give back their slots as they see it gone
	if cn.isClosing() {
		h.state = down
		c.changedLocked()
		return
	}
	c.log.Warn("host lost", "host", h.name, "error", cn.err)
	switch {
	case h.removed || c.closed:
		h.state = down
	case cn.failed() != nil:
		// Tried again after a pause, so that a host whose every agent goes
		// wrong at once is not tried in a loop; meanwhile it is not down,
		// and its tasks wait for it, if no other host takes them.
		h.state = connecting
		c.spawnLocked(func() { c.reconnect(h, time.Second) })
	default:
		h.state = connecting
		c.spawnLocked(func() { c.connect(h) })
	}
	c.changedLocked()
}

// reconnect connects to h after wait, unless Close comes first.
func (c *Cluster) reconnect(h *host, wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		c.connect(h)
	case <-c.ctx.Done():
		c.mu.Lock()
		h.state = down
		c.changedLocked()
		c.mu.Unlock()
	}
}

// markDownLocked marks h down for err, and schedules its next try: after
// backoff(h.failures), unless err says that its allocation has ended.
func (c *Cluster) markDownLocked(h *host, err error) {
	h.state, h.err = down, err
	h.failures++
	c.changedLocked()
	if h.removed || c.closed {
		return
	}
	if errors.Is(err, ErrAllocationEnded) {
		c.log.Warn("host down for good", "host", h.name, "error", err)
		return
	}
	wait := backoff(h.failures)
	c.log.Warn("host down", "host", h.name, "error", err, "retry_in", wait)
	c.spawnLocked(func() {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-c.ctx.Done():
			return
		}
		c.mu.Lock()
		if h.state != down || h.removed {
			c.mu.Unlock()
			return
		}
		h.state = connecting
		c.changedLocked()
		c.mu.Unlock()
		c.connect(h)
	})
}

// backoff is how long a host is left down after its failures in a row:
// 1 s, doubling with each failure, up to a minute.
func backoff(failures int) time.Duration {
	return min(time.Second<<min(failures-1, 6), time.Minute)
}
