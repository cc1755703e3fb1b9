//go:build unix

package remote

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lockWindow bounds the moment between making a control directory and
// locking it. A directory with no lock that is older than this has no pool
// to use it, even if its pid now names another process.
const lockWindow = time.Minute

// socketPathMax is the longest path a unix socket may have: 107 bytes on
// Linux, 103 on macOS and the BSDs.
func socketPathMax() int { return len(unix.RawSockaddrUnix{}.Path) - 1 }

// lockControlDir creates the lock file in dir and holds a lock on it until
// the file returned is closed. The kernel lets the lock go when the
// process ends, however it ends, so a lock that can be taken belongs to
// no live pool. The lock is taken before the file gets its name, so that
// no other pool finds the file there unlocked.
//
// The lock is a POSIX record lock (fcntl), which every unix has, over NFS
// too. Such a lock does not hold against the process that owns it, so a
// pool never tests its own directories (see removeStale).
func lockControlDir(dir string) (io.Closer, error) {
	name := filepath.Join(dir, controlLockName)
	f, err := os.OpenFile(name+".new", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &unix.Flock_t{Type: unix.F_WRLCK}); err != nil {
		f.Close()
		return nil, err
	}
	if err := os.Rename(name+".new", name); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// removeStale removes, from base, the control directories whose pool is
// gone. It removes only what is certainly such a directory: a directory
// (not a symbolic link) owned by this user, named wp-ssh-<pid>-<random>,
// made by another process than this one, and either
//   - holding a lock file that no process holds locked, or
//   - holding no lock file, when no process has its pid any more, or it
//     is older than lockWindow.
//
// Anything else, and whatever cannot be read, is left alone.
func removeStale(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, ok := controlPid(e.Name())
		if !ok || pid == self || !e.IsDir() {
			continue
		}
		dir := filepath.Join(base, e.Name())
		if isStale(dir, pid) {
			os.RemoveAll(dir)
		}
	}
}

// isStale says whether dir, named for pid, is a control directory of this
// user's that no pool uses any more, as removeStale describes.
func isStale(dir string, pid int) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || !ownedByUs(fi) {
		return false
	}
	f, err := os.OpenFile(filepath.Join(dir, controlLockName), os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return !alive(pid) || time.Since(fi.ModTime()) > lockWindow
	}
	if err != nil {
		return false
	}
	defer f.Close() // lets go of the lock, if taken
	lfi, err := f.Stat()
	if err != nil || !lfi.Mode().IsRegular() || !ownedByUs(lfi) {
		return false
	}
	// Taken only if no process holds it; any error (held, or no locks
	// on this file system) leaves the directory alone.
	return unix.FcntlFlock(f.Fd(), unix.F_SETLK, &unix.Flock_t{Type: unix.F_WRLCK}) == nil
}

// ownedByUs says whether this process's user owns the file.
func ownedByUs(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}

// alive says whether a process has this pid (one of another user's
// included).
func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
