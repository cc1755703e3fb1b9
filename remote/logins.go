package remote

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Here is the login that names this machine.
const Here = ":"

// login is one host as given to -S: "[N/]DEST", where DEST is what ssh is
// given to reach it and N its slots.
type login struct {
	text  string // as given, which identifies it
	dest  string // ssh's destination; Here for this machine
	slots int    // 0: as many as the host has CPUs
}

// parseLogin reads one login.
func parseLogin(s string) (login, error) {
	l := login{text: s, dest: s}
	if n, dest, ok := strings.Cut(s, "/"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		slots, err := strconv.Atoi(n)
		if err != nil || slots < 1 {
			return l, fmt.Errorf("login %q: the slots before / must be a number from 1", s)
		}
		l.slots, l.dest = slots, dest
	}
	switch {
	case l.dest == "":
		return l, fmt.Errorf("login %q names no host", s)
	case strings.HasPrefix(l.dest, "-"):
		return l, fmt.Errorf("login %q: a host cannot start with -", s)
	case strings.IndexFunc(l.dest, unicode.IsSpace) >= 0:
		return l, fmt.Errorf("login %q: a host cannot hold spaces", s)
	}
	return l, nil
}

// parseLogins reads logins, each of them a comma-separated list of logins
// as -S takes them.
func parseLogins(lists []string) ([]login, error) {
	var out []login
	for _, list := range lists {
		for s := range strings.SplitSeq(list, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			l, err := parseLogin(s)
			if err != nil {
				return nil, err
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// readLoginFile reads a file of logins, one a line (or comma-separated);
// blank lines and lines starting with # are skipped.
func readLoginFile(path string) ([]login, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	logins, err := parseLogins(lines)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return logins, nil
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
