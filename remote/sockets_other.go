//go:build !unix

package remote

import (
	"errors"
	"io"
)

// socketPathMax is 0: Windows' OpenSSH cannot share connections, so the
// pool makes no control directory.
func socketPathMax() int { return 0 }

// lockControlDir is never called where socketPathMax is 0.
func lockControlDir(string) (io.Closer, error) {
	return nil, errors.New("control sockets are not supported on this system")
}

// removeStale does nothing: no pool here leaves control directories.
func removeStale(string) {}
