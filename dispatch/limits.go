package dispatch

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/workerpool/workerpool/job"
)

// LimitsArg, as a program's first argument, asks it to be the trampoline
// that starts a task under limits: the program's main passes the arguments
// after it to ExecLimited. A process's resource limits can only be set from
// inside it, and Go starts a child with no hook between fork and exec, so
// a task with limits starts as this program, which sets them and then
// replaces itself with the task's program: same process, same group, and
// no moment in which the task runs without its limits.
const LimitsArg = "--exec-with-limits"

// self is this program, which starts tasks that have limits.
var self = sync.OnceValues(os.Executable)

// limited rewrites p, which would run the program at path, to start
// through the trampoline with limits l.
func (p *process) limited(l job.Limits, path string) error {
	exe, err := self()
	if err != nil {
		return fmt.Errorf("cannot find this program to apply limits: %w", err)
	}
	p.path = exe
	p.argv = append([]string{p.argv[0], LimitsArg, encodeLimits(l), path}, p.argv...)
	return nil
}

// encodeLimits writes l as the trampoline reads it: "memory=N,cpu=S,...",
// sizes in bytes and the CPU time in whole seconds.
func encodeLimits(l job.Limits) string {
	var parts []string
	add := func(name string, v int64) {
		if v > 0 {
			parts = append(parts, name+"="+strconv.FormatInt(v, 10))
		}
	}
	add(job.LimitMemory, l.Memory)
	add(job.LimitCPU, l.CPUSeconds())
	add(job.LimitFiles, l.Files)
	add(job.LimitFSize, l.FSize)
	if l.Nice != 0 {
		parts = append(parts, job.LimitNice+"="+strconv.Itoa(l.Nice))
	}
	return strings.Join(parts, ",")
}

// decodeLimits reads what encodeLimits wrote.
func decodeLimits(s string) (job.Limits, error) {
	var l job.Limits
	for part := range strings.SplitSeq(s, ",") {
		name, value, _ := strings.Cut(part, "=")
		n, err := strconv.ParseInt(value, 10, 64)
		if name == job.LimitNice && err == nil && n != 0 && n >= -20 && n <= 19 {
			l.Nice = int(n)
			continue
		}
		if err != nil || n <= 0 {
			return l, fmt.Errorf("bad limit %q", part)
		}
		switch name {
		case job.LimitMemory:
			l.Memory = n
		case job.LimitCPU:
			l.CPU = time.Duration(n) * time.Second
		case job.LimitFiles:
			l.Files = n
		case job.LimitFSize:
			l.FSize = n
		default:
			return l, fmt.Errorf("bad limit %q", part)
		}
	}
	return l, nil
}

// ExecLimited is the trampoline (see LimitsArg): given the limits as
// encodeLimits wrote them, the program's path and its argument list, it
// sets the limits on this process and replaces it with the program. It
// returns only when it could not.
func ExecLimited(args []string) error {
	if len(args) < 3 {
		return fmt.Errorf("%s needs LIMITS PATH ARGV0 [ARG...]", LimitsArg)
	}
	l, err := decodeLimits(args[0])
	if err != nil {
		return err
	}
	if err := setLimits(l); err != nil {
		return err
	}
	return execProgram(args[1], args[2:])
}

// limitOf names the limit that ended a task with the given signal and
// usage, where that is certain: the limit was set and the kernel sends
// that signal for it (SIGXCPU, SIGXFSZ), or the task used all its CPU time
// and was killed, as the kernel does past the CPU limit's hard bound.
func limitOf(l job.Limits, signal string, u *job.Usage) string {
	switch {
	case signal == "SIGXCPU" && l.CPU > 0:
		return job.LimitCPU
	case signal == "SIGKILL" && l.CPU > 0 && u != nil && u.User+u.System >= time.Duration(l.CPUSeconds())*time.Second:
		return job.LimitCPU
	case signal == "SIGXFSZ" && l.FSize > 0:
		return job.LimitFSize
	}
	return ""
}
