//go:build unix

package dispatch

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/workerpool/workerpool/job"
)

// eachLimit calls f for each limit that l sets, with its resource and
// this process's current limit of it, until f fails.
func eachLimit(l job.Limits, f func(name string, resource int, value uint64, cur syscall.Rlimit) error) error {
	for _, r := range []struct {
		name     string
		resource int
		value    int64
	}{
		{job.LimitMemory, unix.RLIMIT_AS, l.Memory},
		{job.LimitCPU, unix.RLIMIT_CPU, l.CPUSeconds()},
		{job.LimitFiles, unix.RLIMIT_NOFILE, l.Files},
		{job.LimitFSize, unix.RLIMIT_FSIZE, l.FSize},
	} {
		if r.value <= 0 {
			continue
		}
		var cur syscall.Rlimit
		if err := syscall.Getrlimit(r.resource, &cur); err != nil {
			return err
		}
		if err := f(r.name, r.resource, uint64(r.value), cur); err != nil {
			return err
		}
	}
	return nil
}

// checkLimits reports a limit that the task could not be given: one above
// the hard limit this process, and so its children, have, or one no
// program could start under (see job.Limits.Check).
func checkLimits(l job.Limits) error {
	if err := l.Check(); err != nil {
		return err
	}
	return eachLimit(l, func(name string, _ int, value uint64, cur syscall.Rlimit) error {
		if hard := uint64(cur.Max); hard != infinity && value > hard {
			return fmt.Errorf("limit %s %d is above the hard limit %d", name, value, hard)
		}
		return nil
	})
}

// setLimits sets l on this process. The CPU limit's hard bound is a second
// above it, so the task first gets SIGXCPU, which it may catch, and SIGKILL
// a second later.
func setLimits(l job.Limits) error {
	if l.Nice != 0 {
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, l.Nice); err != nil {
			return fmt.Errorf("cannot set the niceness %d: %w", l.Nice, err)
		}
	}
	return eachLimit(l, func(name string, resource int, value uint64, cur syscall.Rlimit) error {
		soft, hard := value, value
		if resource == unix.RLIMIT_CPU {
			hard++
		}
		if was := uint64(cur.Max); was != infinity {
			soft, hard = min(soft, was), min(hard, was)
		}
		lim := cur
		lim.Cur, lim.Max = as(cur.Cur, soft), as(cur.Max, hard)
		if err := syscall.Setrlimit(resource, &lim); err != nil {
			return fmt.Errorf("cannot set the %s limit: %w", name, err)
		}
		return nil
	})
}

// infinity is the limit of none, as an unsigned number.
const infinity = uint64(unix.RLIM_INFINITY)

// as converts v to the type of an Rlimit field, which is unsigned on some
// systems and signed on others.
func as[T ~int64 | ~uint64](_ T, v uint64) T { return T(v) }

// execProgram replaces this process with the program at path.
func execProgram(path string, argv []string) error {
	err := syscall.Exec(path, argv, os.Environ())
	return fmt.Errorf("cannot start %s: %w", argv[0], err)
}
