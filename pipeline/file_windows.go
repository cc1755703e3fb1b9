//go:build windows

package pipeline

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockFile takes an exclusive lock on f for as long as f is open, or
// fails at once with errLocked.
func lockFile(f *os.File) error {
	var ol windows.Overlapped
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return errLocked
	}
	return err
}

// replacesOpenFiles says that a file may be renamed over another while
// both are open, as compacting a journal does: not on Windows, where a
// file open without FILE_SHARE_DELETE, as os.OpenFile opens it, can be
// neither renamed nor replaced, so a resumed journal is not compacted.
const replacesOpenFiles = false
