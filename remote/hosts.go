package remote

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
)

// HostSource says which hosts a Cluster runs tasks on, and when that
// changes: StaticHosts gives the hosts of -S, LoginFile those of
// --sshloginfile, and JoinHosts both.
type HostSource interface {
	// Logins returns the hosts to begin with.
	Logins() []Login
	// Watch calls changed with the whole set of hosts each time it may
	// have changed since the last call (since Logins, at first), until ctx
	// is done; then it returns. The calls come one at a time. When the set
	// cannot be told for a while (a file being written again), Watch says
	// why to log and keeps quiet: the hosts stay as they were. A source
	// that never changes returns at once.
	Watch(ctx context.Context, log *slog.Logger, changed func([]Login))
}

// StaticHosts returns the source of the hosts in logins, each of them a
// comma-separated list of logins as -S takes them, which never changes. A
// login that names no count of slots ("host", not "4/host") gets slots,
// as GNU parallel's -j gives them; 0 leaves it as many as its host has
// CPUs. An error is a login that cannot be read.
func StaticHosts(logins []string, slots int) (HostSource, error) {
	ls, err := parseLogins(logins, slots)
	if err != nil {
		return nil, err
	}
	return staticHosts(ls), nil
}

type staticHosts []Login

func (s staticHosts) Logins() []Login { return s }

func (staticHosts) Watch(context.Context, *slog.Logger, func([]Login)) {}

// loginPoll is how often a login file is looked at for a change.
const loginPoll = time.Second

// LoginFile returns the source of the hosts in the file at path: logins
// as -S takes them, one a line, where blank lines and lines that start
// with # are skipped. It reads the file now, and again whenever it
// changes, which it looks for every loginPoll. A login that names no count
// of slots gets slots, as StaticHosts says, when the file is read again
// too. An error is a file that cannot be read, or that holds a login that
// cannot.
func LoginFile(path string, slots int) (HostSource, error) {
	stamp := stampOf(path) // before the read: a change during it is seen
	logins, err := readLoginFile(path, slots)
	if err != nil {
		return nil, fmt.Errorf("--sshloginfile: %w", err)
	}
	return &loginFile{path: path, slots: slots, stamp: stamp, logins: logins}, nil
}

// loginFile is a file of logins, as it was first read.
type loginFile struct {
	path   string
	slots  int // of a login that names no count
	stamp  fileStamp
	logins []Login
}

func (f *loginFile) Logins() []Login { return f.logins }

// Watch reads the file again whenever it changes. A file that cannot be
// read, holds a bad line, or names no host changes nothing.
func (f *loginFile) Watch(ctx context.Context, log *slog.Logger, changed func([]Login)) {
	last := f.stamp
	tick := time.NewTicker(loginPoll)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		stamp := stampOf(f.path)
		if stamp == last {
			continue
		}
		last = stamp
		logins, err := readLoginFile(f.path, f.slots)
		switch {
		case err != nil:
			log.Warn("login file not read again", "error", err)
		case len(logins) == 0:
			// Most likely a writer that has emptied the file and not yet
			// written it again: as for a file deleted, nothing changes.
			log.Warn("login file names no host: the hosts stay as they were", "file", f.path)
		default:
			changed(logins)
		}
	}
}

// fileStamp tells whether a file changed: its size and time of change.
type fileStamp struct {
	size  int64
	mtime int64
	ok    bool
}

func stampOf(path string) fileStamp {
	info, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: info.Size(), mtime: info.ModTime().UnixNano(), ok: true}
}

// JoinHosts returns the source of the hosts that any of sources names, in
// their order: -S and --sshloginfile given together.
func JoinHosts(sources ...HostSource) HostSource { return joinedHosts(sources) }

type joinedHosts []HostSource

func (j joinedHosts) Logins() []Login {
	var all []Login
	for _, s := range j {
		all = append(all, s.Logins()...)
	}
	return all
}

// Watch watches every source, and when one of them changes, tells changed
// its new set joined with the last set of each other one.
func (j joinedHosts) Watch(ctx context.Context, log *slog.Logger, changed func([]Login)) {
	var mu sync.Mutex // serializes the calls of changed
	last := make([][]Login, len(j))
	for i, s := range j {
		last[i] = s.Logins()
	}
	var wg sync.WaitGroup
	for i, s := range j {
		wg.Go(func() {
			s.Watch(ctx, log, func(logins []Login) {
				mu.Lock()
				defer mu.Unlock()
				last[i] = logins
				changed(slices.Concat(last...))
			})
		})
	}
	wg.Wait()
}

// update makes the hosts those of logins: hosts it adds join, hosts it
// drops take no more tasks, and leave once their tasks have ended.
func (c *Cluster) update(logins []Login) {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := map[string]bool{}
	for _, l := range logins {
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
				c.drainLocked(h)
			}
		}
	}
	for _, l := range logins {
		if !have[l.text] {
			c.log.Info("host added", "host", l.dest)
			have[l.text] = true
			c.addLocked(l)
		}
	}
	c.changedLocked()
}
