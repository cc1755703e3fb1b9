package sysstat

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// systemMemory counts as available the pages that are free, speculative
// (read ahead, not yet used) or purgeable: those the kernel hands out
// without paging anything out.
func systemMemory() (Memory, error) {
	total, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return Memory{}, fmt.Errorf("sysctl hw.memsize: %w", err)
	}
	avail, err := pages("vm.page_free_count", "vm.page_speculative_count", "vm.page_purgeable_count")
	if err != nil {
		return Memory{}, err
	}
	return Memory{Available: avail, Total: int64(total)}, nil
}
