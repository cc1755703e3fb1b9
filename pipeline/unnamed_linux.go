package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// createUnnamed creates a file in dir that has no name until place gives it
// one, so that a pool killed outright leaves nothing behind (O_TMPFILE).
// Where the file system cannot, it falls back to a named temporary file.
func createUnnamed(dir string) (*os.File, *placement, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return createNamed(dir)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)"))
	place := func(target string) error {
		// Link it under a temporary name, then rename that over the
		// target: linkat cannot replace a file.
		tmp := filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+"."+strconv.Itoa(os.Getpid())+".tmp")
		os.Remove(tmp) // left by a pool of the same pid, killed at this very step
		err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW)
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, target); err != nil {
			return errors.Join(err, os.Remove(tmp))
		}
		return nil
	}
	return f, &placement{place: place, discard: func() {}}, nil
}
