//go:build !linux && !darwin && !freebsd && !windows

package dispatch

import "errors"

func availableMemory() (int64, error) {
	return 0, errors.New("this platform does not tell its available memory")
}
