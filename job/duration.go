package job

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// ParseDuration reads a time limit written as a Go duration ("1m30s") or as
// a number of seconds ("2.5"). It is the one format of --timeout, --grace
// and a task's "timeout".
func ParseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if d, ok := Seconds(secs); ok {
			return d, nil
		}
	}
	return 0, fmt.Errorf("%q is not a duration such as \"30s\" or a number of seconds", s)
}

// Seconds converts a number of seconds to a Duration; ok is false for a
// negative number or one a Duration cannot hold.
func Seconds(secs float64) (d time.Duration, ok bool) {
	ns := secs * float64(time.Second)
	if !(ns >= 0 && ns < math.MaxInt64) { // NaN fails too
		return 0, false
	}
	return time.Duration(ns), true
}
