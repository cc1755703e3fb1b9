//go:build unix

package pipeline

import (
	"runtime"
	"syscall"
)

// maxRSS reports the pool's peak resident memory in KiB.
func maxRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	kib := int64(ru.Maxrss)
	if runtime.GOOS == "darwin" { // which counts bytes
		kib >>= 10
	}
	return kib
}
