package job

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
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
	// Nice is the niceness the task runs at (setpriority), from -20 to
	// 19; zero leaves the pool's own. It is not a resource limit, but it
	// is set the same way, before the task's program starts. A task does
	// not set it: the executor does (see dispatch.ProcessOptions).
	Nice int
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
	LimitNice   = "nice"
)

// ParseSize reads a size: a number of bytes, or a number with a suffix K,
// M, G or T (powers of 1024; "KB", "KiB" and lower case are read alike,
// and P too), as ulimit and docker --memory read them. The number is
// decimal, and may have a fraction and an exponent (1.5K, 1e9, as JSON
// writes numbers), so long as the size comes to a whole number of bytes:
// 0.5 or 1.1K is an error rather than rounded, so that no nonzero size
// becomes 0, which means none. The arithmetic is exact, and a size past
// the largest int64 is an error.
func ParseSize(s string) (int64, error) {
	digits, exp, shift, ok := splitSize(strings.TrimSpace(s))
	if !ok {
		return 0, fmt.Errorf("%q is not a size such as 512M, 1G or a number of bytes", s)
	}
	n, err := exactSize(digits, exp, shift)
	if err != nil {
		return 0, fmt.Errorf("%q %w", s, err)
	}
	return n, nil
}

var (
	errNotWhole = errors.New("is not a whole number of bytes")
	errTooLarge = fmt.Errorf("is more than the largest size, %d bytes", int64(math.MaxInt64))
)

// exactSize returns digits (a decimal integer) times 10^exp times 2^shift,
// if that is a whole number that an int64 holds.
func exactSize(digits string, exp int64, shift uint) (int64, error) {
	// Trailing zeros go to the exponent, so that a fraction that
	// remains has a last digit other than 0, and is not a multiple of 10.
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits) - len(trimmed))
	digits = strings.TrimLeft(trimmed, "0")
	if digits == "" {
		return 0, nil
	}
	// Bounds that keep the numbers small. The largest int64 has 19
	// digits, and the size is at least 10^(len(digits)-1+exp). A fraction
	// of k digits is whole only if 10^k divides digits times 2^shift,
	// which, digits not being a multiple of 10, needs k <= shift.
	switch {
	case exp < -int64(shift):
		return 0, errNotWhole
	case int64(len(digits)-1)+exp >= 19:
		return 0, errTooLarge
	}
	n, _ := new(big.Int).SetString(digits, 10) // only digits: cannot fail
	n.Lsh(n, shift)
	ten := big.NewInt(10)
	if exp >= 0 {
		n.Mul(n, ten.Exp(ten, big.NewInt(exp), nil))
	} else if _, r := n.QuoRem(n, ten.Exp(ten, big.NewInt(-exp), nil), new(big.Int)); r.Sign() != 0 {
		return 0, errNotWhole
	}
	if !n.IsInt64() {
		return 0, errTooLarge
	}
	return n.Int64(), nil
}

// sizeShifts maps the suffixes a size may have, in lower case, to their
// power of 2.
var sizeShifts = func() map[string]uint {
	m := map[string]uint{"": 0, "b": 0}
	for i, unit := range []string{"k", "m", "g", "t", "p"} {
		for _, form := range []string{"", "b", "ib"} {
			m[unit+form] = uint(10 * (i + 1))
		}
	}
	return m
}()

// splitSize reads a size as a decimal integer (digits, all but the
// exponent's), the power of 10 to multiply it by, and the power of 2 of
// its suffix. ok is false when s is not: an optional +; digits with an
// optional decimal point among or after them; an optional exponent (e or
// E, an optional sign, digits); an optional space; and a suffix from
// sizeShifts.
func splitSize(s string) (digits string, exp int64, shift uint, ok bool) {
	s = strings.TrimPrefix(s, "+")
	whole, s := leadingDigits(s)
	var frac string
	if rest, point := strings.CutPrefix(s, "."); point {
		frac, s = leadingDigits(rest)
	}
	if whole == "" && frac == "" {
		return "", 0, 0, false
	}
	if len(s) > 0 && (s[0] == 'e' || s[0] == 'E') {
		sign, rest := int64(1), s[1:]
		if len(rest) > 0 && (rest[0] == '+' || rest[0] == '-') {
			if rest[0] == '-' {
				sign = -1
			}
			rest = rest[1:]
		}
		var e string
		if e, s = leadingDigits(rest); e == "" {
			return "", 0, 0, false
		}
		// Past 1e9 either way, the size is 0, or too large or not whole,
		// all the same.
		n, err := strconv.ParseInt(e, 10, 64)
		if err != nil || n > 1e9 {
			n = 1e9
		}
		exp = sign * n
	}
	if rest, space := strings.CutPrefix(s, " "); space && rest != "" {
		s = rest
	}
	shift, ok = sizeShifts[strings.ToLower(s)]
	return whole + frac, exp - int64(len(frac)), shift, ok
}

// leadingDigits splits s after its leading ASCII digits.
func leadingDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

// MinMemory is the smallest memory limit. A limit on the address space
// must leave room for the program to be loaded at all: a dynamically
// linked program maps its loader and C library before its first
// instruction runs, about 2.5 MiB for true or sh and 4 MiB for bash on
// x86-64 Linux, and below that it dies of SIGSEGV with no message. A
// limit under 4 MiB is therefore a mistake, such as 1 meant as 1G, rather
// than a cap any program could run under.
const MinMemory = 4 << 20

// minMemoryText is MinMemory as a size is written.
const minMemoryText = "4M"

// ParseMemory reads a memory limit: a size, as ParseSize reads it, of
// MinMemory or more, or 0 for none.
func ParseMemory(s string) (int64, error) {
	n, err := ParseSize(s)
	if err == nil && n > 0 && n < MinMemory {
		return 0, fmt.Errorf("%q is below the smallest memory limit, %s", s, minMemoryText)
	}
	return n, err
}

// Check reports a limit of l that no program could start under: a memory
// limit below MinMemory.
func (l Limits) Check() error {
	if l.Memory > 0 && l.Memory < MinMemory {
		return fmt.Errorf("limit memory %d is below the smallest memory limit, %s", l.Memory, minMemoryText)
	}
	return nil
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
