package remote

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"
)

// Here is the login that names this machine.
const Here = ":"

// Login is one host as -S names it: "[N/]DEST", where DEST is what the
// transport is given to reach it and N its slots. ParseLogin makes one.
type Login struct {
	text  string // as given, which identifies it
	dest  string // the transport's destination; Here for this machine
	slots int    // 0: as many as the host has CPUs
}

// ParseLogin reads one login; an error says what is wrong with it.
func ParseLogin(s string) (Login, error) {
	l := Login{text: s, dest: s}
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

// String returns the login as it was given.
func (l Login) String() string { return l.text }

// parseLogins reads logins, each of them a comma-separated list of logins
// as -S takes them. A login that names no count of slots gets slots; 0
// leaves it as many as its host has CPUs.
func parseLogins(lists []string, slots int) ([]Login, error) {
	var out []Login
	for _, list := range lists {
		for s := range strings.SplitSeq(list, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			l, err := ParseLogin(s)
			if err != nil {
				return nil, err
			}
			if l.slots == 0 {
				l.slots = slots
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// readLoginFile reads a file of logins, one a line (or comma-separated);
// blank lines and lines starting with # are skipped. A login that names no
// count of slots gets slots, as parseLogins says.
func readLoginFile(path string, slots int) ([]Login, error) {
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
	logins, err := parseLogins(lines, slots)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return logins, nil
}
