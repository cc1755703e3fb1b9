package dispatch

// AvailableMemory is the memory this machine has available for new
// processes, in bytes, without swapping: MemAvailable on Linux, the free
// and reclaimable pages on darwin and FreeBSD, the available physical
// memory on Windows. It fails where the platform cannot tell.
func AvailableMemory() (int64, error) { return availableMemory() }
