//go:build unix

package dispatch

import (
	"os"
	"syscall"

	"github.com/workerpool/workerpool/job"
)

// usageOf reads what the process cost from its rusage.
func usageOf(ps *os.ProcessState) *job.Usage {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return nil
	}
	return &job.Usage{
		User:   ps.UserTime(),
		System: ps.SystemTime(),
		MaxRSS: maxRSS(ru),
	}
}

// PeakMemory reports this process's peak resident memory in KiB, or 0
// when it cannot be read.
func PeakMemory() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return maxRSS(&ru)
}

// maxRSS is ru's peak resident memory in KiB. Linux and FreeBSD count it
// in KiB, macOS in bytes (see maxRSSUnit).
func maxRSS(ru *syscall.Rusage) int64 { return int64(ru.Maxrss) / maxRSSUnit }
