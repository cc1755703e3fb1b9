// Package remote runs tasks on other machines, one workerpool agent per
// host, reached through the system's OpenSSH client.
//
// A Cluster is a dispatch.Slots: each host offers as many slots as it has
// CPUs (or as its login says), and the pool starts a task only in a free
// slot. On each host, one long-lived agent (`workerpool --agent`, see
// Serve) runs the tasks it is sent as Local runs them here, with process
// groups, time limits and exit codes, and sends back each result with its
// output. A host that cannot be reached, or is lost while it runs tasks,
// is marked down and tried again later with backoff; its tasks run again
// elsewhere. Delivery is therefore at least once: a task whose host is
// lost may have run there, in part or whole, before it runs again.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kballard/go-shellquote"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/job"
)

// Options configure a Cluster.
type Options struct {
	// Logins are the hosts, as -S takes them: comma-separated "[N/]HOST",
	// N the slots on the host (default: its CPUs), ":" this machine.
	Logins []string
	// LoginFile, when set, names a file of logins, one a line, which is
	// read again when it changes: new hosts join, removed hosts drain.
	LoginFile string
	// SSH is the ssh command as one string, split into words as a shell
	// would; empty means "ssh".
	SSH string
	// RemotePath is the workerpool run on the hosts; empty means
	// "workerpool", found in the remote PATH.
	RemotePath string
	// Push copies this very program to each host that lacks it.
	Push bool
	// Here runs the tasks given slots on this machine (":").
	Here dispatch.Executor
	// ProcessOptions are passed on to the agents, which run tasks as Local
	// does. InheritTo receives ssh's own messages too, and TempDir holds
	// the outputs the agents send that are too big to keep in memory.
	dispatch.ProcessOptions
	// Heartbeat is how often the pool and each agent tell each other they
	// are alive; one silent for three of them is lost. Zero means
	// DefaultHeartbeat.
	Heartbeat time.Duration
	Log       *slog.Logger
}

// Cluster runs tasks on a changing set of hosts. It is a dispatch.Slots;
// Close ends every agent.
type Cluster struct {
	opts      Options
	log       *slog.Logger
	transport transport
	ctx       context.Context // done at Close
	stop      context.CancelFunc
	jobs      sync.WaitGroup // connects, backoffs and the login file's watch
	drains    sync.WaitGroup // agents of removed hosts, being closed

	mu      sync.Mutex
	closed  bool // Close has begun: no job starts any more
	hosts   []*host
	changed chan struct{} // closed, and replaced, at every change of a host
	turn    int           // where the search for a free slot starts
}

// host is one login and the state of its agent.
type host struct {
	login
	name string // as results name it

	// Guarded by Cluster.mu.
	state    hostState
	conn     *conn // while up
	slots    int   // while up
	busy     int   // slots tasks hold, until they give them back: of a conn since lost too
	err      error // why it is down
	failures int   // connections failed in a row
	removed  bool  // left the login file: it takes no more tasks
}

type hostState int

const (
	connecting hostState = iota
	up
	down // until it is tried again
)

// New parses the logins, starts connecting to every host, and returns at
// once: Acquire waits for the first of them. An error is a login that
// cannot be read.
func New(opts Options) (*Cluster, error) {
	logins, err := parseLogins(opts.Logins)
	if err != nil {
		return nil, err
	}
	if opts.LoginFile != "" {
		more, err := readLoginFile(opts.LoginFile)
		if err != nil {
			return nil, fmt.Errorf("--sshloginfile: %w", err)
		}
		logins = append(logins, more...)
	}
	if len(logins) == 0 {
		return nil, errors.New("no host to run tasks on: give -S HOST, or hosts in --sshloginfile")
	}
	if opts.RemotePath == "" {
		opts.RemotePath = "workerpool"
	}
	tr, err := newOpenSSH(opts.SSH)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, log: opts.Log, transport: tr, changed: make(chan struct{})}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.mu.Lock()
	for _, l := range logins {
		c.add(l)
	}
	c.mu.Unlock()
	if opts.LoginFile != "" {
		c.mu.Lock()
		c.spawn(c.watch)
		c.mu.Unlock()
	}
	return c, nil
}

// Capacity is a guess of how many tasks the cluster runs at once, for
// sizing buffers before the hosts have answered: the slots of the hosts up,
// or as their logins say, and 8 for each host yet unknown.
func (c *Cluster) Capacity() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, h := range c.hosts {
		switch {
		case h.state == up:
			n += h.slots
		case h.login.slots > 0:
			n += h.login.slots
		default:
			n += 8
		}
	}
	return n
}

// add adds a host and starts connecting to it. c.mu is held.
func (c *Cluster) add(l login) {
	h := &host{login: l, name: l.dest}
	c.hosts = append(c.hosts, h)
	if l.dest == Here {
		h.state, h.slots = up, l.slots
		if h.slots == 0 {
			h.slots = runtime.NumCPU()
		}
		c.changedLocked()
		return
	}
	h.state = connecting
	c.spawn(func() { c.connect(h) })
}

// spawn runs f as one of the cluster's jobs, unless Close has begun.
// c.mu is held.
func (c *Cluster) spawn(f func()) {
	if !c.closed {
		c.jobs.Go(f)
	}
}

// drain closes the agent of a host that takes no more tasks, on its own.
// c.mu is held.
func (c *Cluster) drain(h *host) {
	cn := h.conn
	h.conn, h.state = nil, down
	c.drains.Go(func() { cn.close(c.closeWait()) })
}

// changedLocked wakes those waiting in Acquire. c.mu is held.
func (c *Cluster) changedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// connect starts the agent on h, and marks h up or down.
func (c *Cluster) connect(h *host) {
	path := shellquote.Join(c.opts.RemotePath)
	var err error
	if c.opts.Push {
		path, err = push(c.ctx, c.transport, h.dest)
	}
	var cn *conn
	if err == nil {
		opts := connOptions{grace: c.opts.Grace, beat: c.opts.Heartbeat,
			tempDir: c.opts.TempDir, inherit: c.inherit()}
		cn, err = dial(c.ctx, c.transport, h.name, h.dest, agentCommand(path, c.agentFlags()), opts, func(cn *conn) { c.lost(h, cn) })
	}
	c.mu.Lock()
	if err != nil {
		c.markDown(h, err)
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
		c.markDown(h, cn.err)
		return
	default:
	}
	h.state, h.conn, h.err, h.failures = up, cn, nil, 0
	h.slots = h.login.slots
	if h.slots == 0 {
		h.slots = max(cn.hello.CPUs, 1)
	}
	c.log.Info("host up", "host", h.name, "slots", h.slots, "agent", cn.hello.Agent, "os", cn.hello.OS, "arch", cn.hello.Arch)
	c.changedLocked()
}

// agentFlags are the flags of the agents: what they apply as Local does.
func (c *Cluster) agentFlags() []string {
	return []string{"--grace", c.opts.Grace.String(), "--max-output", fmt.Sprint(c.opts.MaxOutput), "--stderr", c.opts.Stderr.String()}
}

func (c *Cluster) inherit() io.Writer {
	if c.opts.Stderr == dispatch.StderrInherit {
		return c.opts.InheritTo
	}
	return nil
}

// closeWait is how long an agent is given to end once its input ends: to
// stop its tasks, which takes the grace at most.
func (c *Cluster) closeWait() time.Duration { return c.opts.Grace + replyMargin }

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
		c.spawn(func() { c.reconnect(h, time.Second) })
	default:
		h.state = connecting
		c.spawn(func() { c.connect(h) })
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

// markDown marks h down for err, and schedules its next try: after 1 s,
// doubling with each failure in a row, up to a minute. c.mu is held.
func (c *Cluster) markDown(h *host, err error) {
	h.state, h.err = down, err
	h.failures++
	c.changedLocked()
	if h.removed || c.closed {
		return
	}
	wait := min(time.Second<<min(h.failures-1, 6), time.Minute)
	c.log.Warn("host down", "host", h.name, "error", err, "retry_in", wait)
	c.spawn(func() {
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

// Acquire waits for a free slot: on the host with the most room for its
// size, so that work spreads over every host. It fails when ctx is done,
// or when every host is down.
func (c *Cluster) Acquire(ctx context.Context) (dispatch.Slot, error) {
	for {
		c.mu.Lock()
		if s := c.pick(); s != nil {
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

// pick takes a free slot on the host that has the most room for its
// size, or returns nil. c.mu is held.
func (c *Cluster) pick() *slot {
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
// down and none is being connected to; nil otherwise. c.mu is held.
func (c *Cluster) noHostLocked() error {
	var why []string
	for _, h := range c.hosts {
		if h.removed {
			continue
		}
		if h.state != down {
			return nil
		}
		why = append(why, fmt.Sprintf("%s: %v", h.name, h.err))
	}
	if len(why) == 0 {
		return errors.New("no host left to run on: the login file names none")
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
		c.drain(h)
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

// Close ends every agent, waiting for each to stop what it runs, and
// releases the transport. Call it once every Execute has returned.
func (c *Cluster) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.stop() // connects in progress give up; backoffs and the watch end
	c.jobs.Wait()
	c.mu.Lock()
	var conns []*conn
	for _, h := range c.hosts {
		if h.conn != nil {
			conns = append(conns, h.conn)
		}
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, cn := range conns {
		wg.Go(func() { cn.close(c.closeWait()) })
	}
	wg.Wait()
	c.drains.Wait()
	c.transport.close()
	return nil
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

// watch reads the login file again whenever it changes, until Close:
// hosts it adds join, hosts it drops drain and leave. A file that cannot
// be read, holds a bad line, or names no host changes nothing.
func (c *Cluster) watch() {
	path := c.opts.LoginFile
	last := stampOf(path)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-c.ctx.Done():
			return
		}
		stamp := stampOf(path)
		if stamp == last {
			continue
		}
		last = stamp
		logins, err := readLoginFile(path)
		switch {
		case err != nil:
			c.log.Warn("login file not read again", "error", err)
		case len(logins) == 0:
			// Most likely a writer that has emptied the file and not yet
			// written it again: as for a file deleted, nothing changes.
			c.log.Warn("login file names no host: the hosts stay as they were", "file", path)
		default:
			c.update(logins)
		}
	}
}

// update makes the hosts of the login file those of logins; the hosts
// given by -S stay.
func (c *Cluster) update(logins []login) {
	fixed, _ := parseLogins(c.opts.Logins)
	c.mu.Lock()
	defer c.mu.Unlock()
	want := map[string]bool{}
	for _, l := range slices.Concat(fixed, logins) {
		want[l.text] = true
	}
	have := map[string]bool{}
	for _, h := range c.hosts {
		if h.removed {
			continue
		}
		have[h.text] = true
		if !want[h.text] {
			c.log.Info("host removed", "host", h.name)
			h.removed = true
			if h.conn != nil && h.busy == 0 {
				c.drain(h)
			}
		}
	}
	for _, l := range logins {
		if !have[l.text] {
			c.log.Info("host added", "host", l.dest)
			have[l.text] = true
			c.add(l)
		}
	}
	c.changedLocked()
}
