package job

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a time limit written as a Go duration ("1m30s") or as
// a number of seconds ("2.5"). It is the one format of --timeout, --grace
// and a task's "timeout". 0 is a limit of none; a limit above 0 but under
// a millisecond is an error, so that a slip such as 1e-12, which rounds to
// 0, does not lift the limit altogether.
func ParseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		// The units hold no digits: any digit but 0 means above 0.
		return atLeastMillisecond(d, strings.ContainsAny(s, "123456789"), strconv.Quote(s))
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		return Seconds(secs)
	}
	return 0, fmt.Errorf("%q is not a duration such as \"30s\" or a number of seconds", s)
}

// Seconds converts a number of seconds to a Duration, with the rules of
// ParseDuration; a negative number, or one a Duration cannot hold, is an
// error.
func Seconds(secs float64) (time.Duration, error) {
	ns := secs * float64(time.Second)
	if !(ns >= 0 && ns < math.MaxInt64) { // NaN fails too
		return 0, fmt.Errorf("%v is not a number of seconds a time limit can be", secs)
	}
	return atLeastMillisecond(time.Duration(ns), secs > 0, strconv.FormatFloat(secs, 'g', -1, 64))
}

// atLeastMillisecond returns d, a limit written as given, unless it is
// above 0 but under a millisecond.
func atLeastMillisecond(d time.Duration, positive bool, given string) (time.Duration, error) {
	if positive && d < time.Millisecond {
		return 0, fmt.Errorf("%s is under 1ms: use 0 for no limit, or at least 1ms", given)
	}
	return d, nil
}
