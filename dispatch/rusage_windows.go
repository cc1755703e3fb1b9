package dispatch

// PeakMemory reports 0: this process's peak memory is not read on Windows.
func PeakMemory() int64 { return 0 }
