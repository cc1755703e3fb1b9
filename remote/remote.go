// Package remote runs tasks on other machines, one workerpool agent per
// host, reached through a Transport such as OpenSSH, the system's ssh
// client.
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
//
// The hosts come from a HostSource, which may change them as the run
// goes: new hosts join, and removed hosts drain.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/workerpool/workerpool/dispatch"
)

// Options configure a Cluster.
type Options struct {
	// Hosts names the hosts to run tasks on, and tells when they change.
	// A host is a login, "[N/]HOST": N the slots on the host (default: as
	// many as the source gives a login without N, or else its CPUs), ":"
	// this machine.
	Hosts HostSource
	// Transport reaches the hosts, and is required. New takes it over:
	// Close closes it, and so does New when it fails.
	Transport Transport
	// RemotePath is the workerpool run on the hosts; empty means
	// "workerpool", found in the remote PATH.
	RemotePath string
	// Push copies this very program to each host that lacks it.
	Push bool
	// PushKeep is how many versions Push keeps on each host, the one it
	// uses among them; zero means DefaultPushKeep.
	PushKeep int
	// Cleanup removes the files a task stages on its host (its Transfer
	// and Return) once they are returned.
	Cleanup bool
	// Here runs the tasks given slots on this machine (":").
	Here dispatch.Executor
	// ProcessOptions are passed on to the agents, which run tasks as Local
	// does. InheritTo receives ssh's own messages too, and TempDir holds
	// the outputs the agents send that are too big to keep in memory.
	dispatch.ProcessOptions
	// Gates are passed on to the agents, each of which holds back the
	// starts on its host (dispatch.Gates.Host; their sources are the
	// hosts' own). The pool keeps the Shared gates itself.
	Gates dispatch.Gates
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
	transport Transport
	ctx       context.Context // done at Close
	stop      context.CancelFunc
	jobs      sync.WaitGroup // connects, backoffs and the watch of the hosts
	drains    sync.WaitGroup // agents of removed hosts, being closed

	// mu guards what follows, and the hosts' state. The methods whose
	// names end in Locked run with it held.
	mu      sync.Mutex
	closed  bool // Close has begun: no job starts any more
	hosts   []*host
	changed chan struct{} // closed, and replaced, at every change of a host
	turn    int           // where the search for a free slot starts
}

// New starts connecting to every host, and returns at once: Acquire waits
// for the first of them. Then it follows the changes of opts.Hosts until
// Close. An error is no transport, or no host to begin with.
func New(opts Options) (*Cluster, error) {
	if opts.Transport == nil {
		return nil, errors.New("no transport to reach the hosts")
	}
	var logins []Login
	if opts.Hosts != nil {
		logins = opts.Hosts.Logins()
	}
	if len(logins) == 0 {
		opts.Transport.Close()
		return nil, errors.New("no host to run tasks on: give -S HOST, or hosts in --sshloginfile")
	}
	if opts.RemotePath == "" {
		opts.RemotePath = "workerpool"
	}
	if opts.PushKeep <= 0 {
		opts.PushKeep = DefaultPushKeep
	}
	c := &Cluster{opts: opts, log: opts.Log, transport: opts.Transport, changed: make(chan struct{})}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logins {
		c.addLocked(l)
	}
	c.spawnLocked(func() { opts.Hosts.Watch(c.ctx, c.log, c.update) })
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
		case h.Login.slots > 0:
			n += h.Login.slots
		default:
			n += 8
		}
	}
	return n
}

// Close ends every agent, waiting for each to stop what it runs, and
// closes the transport. Call it once every Execute has returned.
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
	c.transport.Close()
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

// agentArgv is the program that starts the agent at path, with the flags
// of what it applies as Local does.
func (c *Cluster) agentArgv(path string) []string {
	argv := []string{path, "--agent", "--grace", c.opts.Grace.String(), "--max-output", fmt.Sprint(c.opts.MaxOutput), "--stderr", c.opts.Stderr.String()}
	if g := c.opts.Gates; g.MemFree > 0 {
		argv = append(argv, "--memfree", strconv.FormatInt(g.MemFree, 10))
	}
	if g := c.opts.Gates; g.Load > 0 {
		argv = append(argv, "--load", strconv.FormatFloat(g.Load, 'g', -1, 64))
	}
	if c.opts.Nice != 0 {
		argv = append(argv, "--nice", strconv.Itoa(c.opts.Nice))
	}
	return argv
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
