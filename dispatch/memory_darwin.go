package dispatch

import "golang.org/x/sys/unix"

// availableMemory counts the free pages and the speculative ones, which
// the kernel gives back as soon as they are wanted.
func availableMemory() (int64, error) {
	free, err := unix.SysctlUint32("vm.page_free_count")
	if err != nil {
		return 0, err
	}
	speculative, _ := unix.SysctlUint32("vm.page_speculative_count")
	return (int64(free) + int64(speculative)) * int64(unix.Getpagesize()), nil
}
