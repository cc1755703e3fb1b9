package sysstat

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// systemMemory counts as available the pages that are free or inactive,
// as top(1)'s "Free" and "Inact" do: inactive pages are reclaimed
// before anything is swapped out.
func systemMemory() (Memory, error) {
	total, err := unix.SysctlUint64("hw.physmem")
	if err != nil {
		return Memory{}, fmt.Errorf("sysctl hw.physmem: %w", err)
	}
	avail, err := pages("vm.stats.vm.v_free_count", "vm.stats.vm.v_inactive_count")
	if err != nil {
		return Memory{}, err
	}
	return Memory{Available: avail, Total: int64(total)}, nil
}
