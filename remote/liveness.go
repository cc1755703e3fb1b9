package remote

import (
	"fmt"
	"time"
)

// heardReader reads the agent's output, noting when bytes come.
type heardReader struct{ c *conn }

func (r heardReader) Read(p []byte) (int, error) {
	n, err := r.c.stdoutR.Read(p)
	if n > 0 {
		r.c.heard.Store(time.Now().UnixNano())
	}
	return n, err
}

// pulse writes a heartbeat every beat until the connection ends or closes.
func (c *conn) pulse() {
	tick := time.NewTicker(c.beat)
	defer tick.Stop()
	for {
		if c.isClosing() {
			return
		}
		if err := c.send(request{Heartbeat: int64(c.beat)}); err != nil && !c.isClosing() {
			c.fail(fmt.Errorf("cannot send a heartbeat: %w", err))
			return
		}
		select {
		case <-tick.C:
		case <-c.dead:
			return
		}
	}
}

// watch ends the connection once the agent has said nothing for
// livenessBeats beats: a frozen agent, or a host gone silent.
func (c *conn) watch() {
	tick := time.NewTicker(c.beat)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-c.dead:
			return
		}
		if silent := c.silence(); silent > livenessBeats*c.beat {
			c.fail(fmt.Errorf("no word from the agent for %s", silent.Round(100*time.Millisecond)))
			return
		}
	}
}

// silence is how long the agent has said nothing.
func (c *conn) silence() time.Duration {
	return time.Since(time.Unix(0, c.heard.Load()))
}

// fail ends the connection for err, unless it has already failed: it kills
// the transport, and the reader then ends with err as the reason.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.failure == nil {
		c.failure = err
	}
	c.mu.Unlock()
	c.kill()
}

// failed returns why the pool ended the connection, or nil.
func (c *conn) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failure
}
