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
	"sync"
	"time"

	"github.com/workerpool/workerpool/dispatch"
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

	// mu guards what follows, and the hosts' state. The methods whose
	// names end in Locked run with it held.
	mu      sync.Mutex
	closed  bool // Close has begun: no job starts any more
	hosts   []*host
	changed chan struct{} // closed, and replaced, at every change of a host
	turn    int           // where the search for a free slot starts
}

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
		c.addLocked(l)
	}
	c.mu.Unlock()
	if opts.LoginFile != "" {
		c.mu.Lock()
		c.spawnLocked(c.watch)
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

// spawnLocked runs f as one of the cluster's jobs, unless Close has begun.
func (c *Cluster) spawnLocked(f func()) {
	if !c.closed {
		c.jobs.Go(f)
	}
}

// changedLocked wakes those waiting in Acquire.
func (c *Cluster) changedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
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
