//go:build !linux && !darwin && !freebsd && !windows

package sysstat

import (
	"fmt"
	"runtime"
)

func systemMemory() (Memory, error) {
	return Memory{}, fmt.Errorf("cannot read the memory available on %s", runtime.GOOS)
}

func systemLoad() (float64, error) { return 0, ErrNoLoad }
