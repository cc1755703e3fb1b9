//go:build darwin || freebsd

package sysstat

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// systemLoad reads the kernel's struct loadavg: three fixed-point averages
// (uint32), then the scale they are in (a long, after padding on 64-bit
// systems).
func systemLoad() (float64, error) {
	b, err := unix.SysctlRaw("vm.loadavg")
	if err != nil {
		return 0, fmt.Errorf("sysctl vm.loadavg: %w", err)
	}
	var scale uint64
	switch {
	case len(b) >= 24:
		scale = binary.NativeEndian.Uint64(b[16:24])
	case len(b) >= 16:
		scale = uint64(binary.NativeEndian.Uint32(b[12:16]))
	}
	if scale == 0 {
		return 0, fmt.Errorf("sysctl vm.loadavg: %d bytes that are not a load average", len(b))
	}
	return float64(binary.NativeEndian.Uint32(b[0:4])) / float64(scale), nil
}

// pages reads a count of pages, by sysctl name, in bytes.
func pages(names ...string) (int64, error) {
	var n int64
	for _, name := range names {
		v, err := unix.SysctlUint32(name)
		if err != nil {
			return 0, fmt.Errorf("sysctl %s: %w", name, err)
		}
		n += int64(v)
	}
	return n * int64(unix.Getpagesize()), nil
}
