package pipeline

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/workerpool/workerpool/job"
)

// HaltWhen says how a run halts once its Halt condition is met.
type HaltWhen int

const (
	// HaltNever never halts: every task runs.
	HaltNever HaltWhen = iota
	// HaltSoon starts no new task; the running ones finish.
	HaltSoon
	// HaltNow starts no new task and stops the running ones.
	HaltNow
)

// Halt is when a run stops early, as GNU parallel's --halt says it:
// "when,fail=N", "when,fail=N%", "when,success=N" or "when,success=N%",
// with when "soon" or "now"; or "never". The tasks not started are
// answered as skipped (job.ErrSkipped), and those stopped as cancelled.
type Halt struct {
	When HaltWhen
	// Success counts the tasks that succeed, rather than those that fail.
	Success bool
	// Count is how many tasks must fail (or succeed) for the run to halt.
	Count int64
	// Percent, when not zero, is the share of all the tasks, in percent,
	// that must fail (or succeed) instead of Count: all the tasks are
	// read before the first starts, to count them.
	Percent float64
}

// haltShorthands are GNU parallel's numbers for some halts.
var haltShorthands = map[string]string{"0": "never", "1": "soon,fail=1", "2": "now,fail=1", "-1": "soon,success=1", "-2": "now,success=1"}

// ParseHalt reads a halt as GNU parallel's --halt writes it (see Halt),
// its numbers 0, 1, 2, -1 and -2, and "N%" for "soon,fail=N%".
func ParseHalt(s string) (Halt, error) {
	spelled := s
	if long, ok := haltShorthands[s]; ok {
		spelled = long
	} else if strings.HasSuffix(s, "%") && !strings.Contains(s, ",") {
		spelled = "soon,fail=" + s
	}
	if spelled == "never" {
		return Halt{}, nil
	}
	bad := fmt.Errorf("%q is not a halt such as now,fail=1, soon,fail=10%%, now,success=1 or never", s)
	when, cond, ok := strings.Cut(spelled, ",")
	kind, amount, ok2 := strings.Cut(cond, "=")
	var h Halt
	switch {
	case !ok || !ok2:
		return h, bad
	case when == "soon":
		h.When = HaltSoon
	case when == "now":
		h.When = HaltNow
	default:
		return h, bad
	}
	switch kind {
	case "fail":
	case "success":
		h.Success = true
	default:
		return h, bad
	}
	if pct, isPct := strings.CutSuffix(amount, "%"); isPct {
		p, err := strconv.ParseFloat(pct, 64)
		if err != nil || p <= 0 || p > 100 || math.IsNaN(p) {
			return h, fmt.Errorf("%q: the percentage must be more than 0 and at most 100", s)
		}
		h.Percent = p
		return h, nil
	}
	n, err := strconv.ParseInt(amount, 10, 64)
	if err != nil || n < 1 {
		return h, fmt.Errorf("%q: the number of tasks must be 1 or more", s)
	}
	h.Count = n
	return h, nil
}

// String is h as --halt writes it.
func (h Halt) String() string {
	if h.When == HaltNever {
		return "never"
	}
	s := "soon,"
	if h.When == HaltNow {
		s = "now,"
	}
	if h.Success {
		s += "success="
	} else {
		s += "fail="
	}
	if h.Percent > 0 {
		return s + strconv.FormatFloat(h.Percent, 'f', -1, 64) + "%"
	}
	return s + strconv.FormatInt(h.Count, 10)
}

// halter counts the results of a run against its Halt, and says when the
// run must halt. Its methods may be called from many goroutines at once.
type halter struct {
	Halt
	mu                sync.Mutex
	total             int64 // the tasks in all, for a percentage
	failed, succeeded int64
	halted            bool
}

// setTotal tells a halter with a percentage how many tasks there are.
func (h *halter) setTotal(n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total = n
}

// finished counts res, and returns the cause to stop the run with when
// res is the one that meets the condition: a *haltError; nil otherwise,
// and for every result after. A result the run's own stop made (skipped,
// cancelled) counts for nothing.
func (h *halter) finished(res *job.Result) error {
	if h.When == HaltNever || errors.Is(res.Err, job.ErrSkipped) || errors.Is(res.Err, job.ErrCancelled) {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := &h.succeeded
	if res.Failed() {
		n = &h.failed
	}
	*n++
	if h.halted || res.Failed() == h.Success {
		return nil
	}
	need := float64(h.Count)
	if h.Percent > 0 {
		// As GNU parallel: a share of all the tasks, not of those done.
		need = float64(h.total) * h.Percent / 100
	}
	if float64(*n) < need {
		return nil
	}
	h.halted = true
	return &haltError{halt: h.Halt, count: *n}
}

// haltError is the cause of a run that halted: the tasks it keeps from
// starting are answered with it, as skipped.
type haltError struct {
	halt  Halt
	count int64 // the failures (or successes) that made it halt
}

func (e *haltError) Error() string {
	one, many := "failure", "failures"
	if e.halt.Success {
		one, many = "success", "successes"
	}
	what := "an earlier " + one
	if e.count > 1 {
		what = strconv.FormatInt(e.count, 10) + " " + many
	}
	return fmt.Sprintf("skipped after %s (--halt %s)", what, e.halt)
}

func (e *haltError) Is(target error) bool { return target == job.ErrSkipped }
