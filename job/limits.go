package job

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
)

// Limits caps what a task may take, each as the kernel's resource limit
// of the same name (setrlimit) set before the task's program starts. Zero
// is no limit.
type Limits struct {
	// Memory is the task's address space in bytes (RLIMIT_AS): past it,
	// allocations fail.
	Memory int64
	// CPU is the task's processor time (RLIMIT_CPU), which the kernel
	// counts in whole seconds: past it, the task gets SIGXCPU.
	CPU time.Duration
	// Files is the most file descriptors the task may hold open
	// (RLIMIT_NOFILE).
	Files int64
	// FSize is the largest file the task may write, in bytes
	// (RLIMIT_FSIZE): past it, the task gets SIGXFSZ.
	FSize int64
}

// Set reports whether any limit is set.
func (l Limits) Set() bool { return l != Limits{} }

// Or returns l, with each limit it does not set taken from defaults.
func (l Limits) Or(defaults Limits) Limits {
	if l.Memory == 0 {
		l.Memory = defaults.Memory
	}
	if l.CPU == 0 {
		l.CPU = defaults.CPU
	}
	if l.Files == 0 {
		l.Files = defaults.Files
	}
	if l.FSize == 0 {
		l.FSize = defaults.FSize
	}
	return l
}

// CPUSeconds is the CPU limit in the kernel's whole seconds, rounded up.
func (l Limits) CPUSeconds() int64 {
	return int64(math.Ceil(l.CPU.Seconds()))
}

// The names of the limits, as a task's "limits" and the results say them.
const (
	LimitMemory = "memory"
	LimitCPU    = "cpu"
	LimitFiles  = "files"
	LimitFSize  = "fsize"
)

// ParseSize reads a size: a number of bytes, or a number with a suffix K,
// M, G or T (powers of 1024; "KB", "MiB" and lower case are read alike),
// as ulimit and docker --memory read them.
func ParseSize(s string) (int64, error) {
	n, err := units.RAMInBytes(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 512M, 1G or a number of bytes", s)
	}
	return n, nil
}

// ParseCount reads a number of things, such as open files: a whole number
// from 0.
func ParseCount(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a whole number from 0", s)
	}
	return n, nil
}

// Usage is what a task's process cost, as the kernel accounts it: the
// process and the children it waited for.
type Usage struct {
	User, System time.Duration
	// MaxRSS is the peak resident memory in KiB (of the process, or of its
	// largest waited-for child).
	MaxRSS int64
}
