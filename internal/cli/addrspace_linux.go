package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// The address space a run needs. The Go runtime reserves about 700 MiB of
// it as it starts, before any code of the program runs (mostly the page
// allocator's summaries of the whole heap address range, 512 MiB of them),
// and the heap then grows by 64 MiB at a time: 1 GiB leaves room for that,
// a wide pool with a hundred tasks' output in memory included.
//
// A build with cgo (go build or go install where a C compiler is found)
// makes its threads through the C library, and glibc gives each one a
// stack of ulimit -s (2 MiB when that is unlimited) and, once it calls
// malloc, an arena that reserves 64 MiB. The pool makes 16 spare threads as
// it starts (see dispatch.NewLocal), and the runtime one for each
// processor and a few of its own.
const (
	addressSpaceBase = 1 << 30
	mallocArena      = 64 << 20
	cgoThreads       = 20 // besides one for each processor
)

// checkAddressSpace reports, as a usage error, an address space limit
// (RLIMIT_AS, ulimit -v) below what a run needs: under it, the Go runtime
// would abort with a stack trace, at once or in the middle of the run,
// when it cannot grow the heap or make a thread. Below about 700 MiB it
// aborts so before the program starts, and no check can run.
func checkAddressSpace() error {
	var as, stack unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_AS, &as) != nil || as.Cur == unix.RLIM_INFINITY {
		return nil
	}
	threadStack := uint64(2 << 20)
	if unix.Getrlimit(unix.RLIMIT_STACK, &stack) == nil && stack.Cur != unix.RLIM_INFINITY {
		threadStack = min(stack.Cur, 1<<40) // bounded, so that the sum cannot wrap
	}
	need := addressSpaceNeed(withCgo(), runtime.GOMAXPROCS(0), threadStack)
	if as.Cur >= need {
		return nil
	}
	err := fmt.Errorf("the address space limit (ulimit -v) is %d KiB, below the %d KiB workerpool needs", as.Cur>>10, need>>10)
	if need > addressSpaceBase {
		err = fmt.Errorf("%w as built, with cgo; built without it (CGO_ENABLED=0, as make build builds it), it needs %d KiB", err, addressSpaceBase>>10)
	}
	return usageError(err)
}

// addressSpaceNeed returns the address space, in bytes, that a run needs,
// built with cgo or not, with procs processors and, with cgo, threads of
// threadStack bytes.
func addressSpaceNeed(cgo bool, procs int, threadStack uint64) uint64 {
	if !cgo {
		return addressSpaceBase
	}
	return addressSpaceBase + uint64(cgoThreads+procs)*(threadStack+mallocArena)
}

// withCgo reports whether this program was built with cgo.
func withCgo() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "CGO_ENABLED" {
			return s.Value == "1"
		}
	}
	return false
}
