package remote

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Control sockets. ssh's ControlMaster lets the commands a pool runs on a
// host share one connection through a unix socket, named ControlPath. The
// pool keeps its sockets in a directory of its own, wp-ssh-<pid>-<random>,
// mode 0700, which it removes at close. A pool killed before close leaves
// its directory behind; the next pool to start removes it (removeStale).

// controlPrefix begins the name of every control directory.
const controlPrefix = "wp-ssh-"

// socketRoom is what ssh appends to the directory to name a socket: "/",
// %C (40 hex digits) and, while a master starts, "." and 16 random
// characters for the temporary socket it then renames.
const socketRoom = len("/") + 40 + len(".") + 16

// randomRoom is the longest random part os.MkdirTemp gives a name.
const randomRoom = 10

// controlLockName is the file in a control directory that its pool holds
// locked while it runs (see lockControlDir).
const controlLockName = "lock"

// controlDir is the directory that holds one pool's control sockets.
type controlDir struct {
	path string
	lock io.Closer // held until remove: the directory is in use
}

// remove removes the directory and what it holds, then lets its lock go.
func (d *controlDir) remove() {
	os.RemoveAll(d.path)
	d.lock.Close()
}

// newControlDir first removes the control directories that pools which are
// gone left behind, then makes one for this pool: in $TMPDIR, or in /tmp
// when the sockets' paths would be too long there (macOS's $TMPDIR alone
// is about 49 characters, and a socket's path has room for 103 or 107).
// It returns nil where ssh cannot share connections (Windows), or where no
// directory can be made whose sockets' paths fit: the pool then opens one
// connection per command.
func newControlDir() *controlDir { return makeControlDir(controlBases(), socketPathMax()) }

// makeControlDir removes the stale control directories in bases, then
// makes one in the first of bases where a socket's path stays within
// limit bytes. It returns nil if there is none.
func makeControlDir(bases []string, limit int) *controlDir {
	if limit == 0 {
		return nil
	}
	for _, base := range bases {
		removeStale(base)
	}
	prefix := fmt.Sprintf("%s%d-", controlPrefix, os.Getpid())
	for _, base := range bases {
		if len(base)+1+len(prefix)+randomRoom+socketRoom > limit {
			continue
		}
		dir, err := os.MkdirTemp(base, prefix)
		if err != nil {
			continue
		}
		// MkdirTemp asks for 0700, which a umask may narrow.
		if err := os.Chmod(dir, 0o700); err != nil {
			os.RemoveAll(dir)
			continue
		}
		lock, err := lockControlDir(dir)
		if err != nil {
			os.RemoveAll(dir)
			continue
		}
		return &controlDir{path: dir, lock: lock}
	}
	return nil
}

// controlBases are the directories where a control directory may be made,
// in order of preference: the temporary directory, then /tmp. Each is an
// absolute, clean path, given once.
func controlBases() []string {
	var bases []string
	for _, b := range []string{os.TempDir(), "/tmp"} {
		if filepath.IsAbs(b) {
			if b = filepath.Clean(b); len(bases) == 0 || bases[0] != b {
				bases = append(bases, b)
			}
		}
	}
	return bases
}

// controlPid returns the pid in the name of a control directory,
// wp-ssh-<pid>-<random>; ok is false for any other name.
func controlPid(name string) (pid int, ok bool) {
	rest, found := strings.CutPrefix(name, controlPrefix)
	if !found {
		return 0, false
	}
	p, random, found := strings.Cut(rest, "-")
	if !found || !allDigits(p) || !allDigits(random) {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

// allDigits says whether s is one or more ASCII digits.
func allDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
