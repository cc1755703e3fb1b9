package dispatch

import "golang.org/x/sys/unix"

// availableMemory counts the free pages and the inactive ones, which the
// kernel reclaims as soon as they are wanted.
func availableMemory() (int64, error) {
	free, err := unix.SysctlUint32("vm.stats.vm.v_free_count")
	if err != nil {
		return 0, err
	}
	inactive, _ := unix.SysctlUint32("vm.stats.vm.v_inactive_count")
	return (int64(free) + int64(inactive)) * int64(unix.Getpagesize()), nil
}
