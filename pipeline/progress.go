package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/workerpool/workerpool/decode"
	"github.com/workerpool/workerpool/job"
)

// progress draws a live progress line on a terminal: tasks done, failed and
// running, the rate, and, when the number of tasks is known, a bar and an
// estimate of the time left. It observes the tasks' lives (job.Observer).
type progress struct {
	bar   *progressbar.ProgressBar
	out   io.Writer // the terminal
	start time.Time

	capacity func() int64 // the memory tasks may reserve; 0 when not known

	mu                    sync.Mutex
	done, failed, running int64
	reserved              int64  // the memory the running tasks reserve
	held                  string // the gate or resource a task waits for, since the last start
}

// newProgress returns a progress display on w, or nil when w is not a
// terminal. The number of tasks is unknown until countTasks finds it.
// capacity tells the memory the tasks may reserve, 0 when not known.
func newProgress(w io.Writer, capacity func() int64) *progress {
	if !isTerminal(w) {
		return nil
	}
	f := w.(*os.File)
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(f),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSpinnerType(14),
	)
	return &progress{bar: bar, out: f, start: time.Now(), capacity: capacity}
}

// Observe counts a task as running from its start to its finish, and as
// done, and maybe failed, when it finishes. From a task's wait at a gate
// (job.Waiting) to the next start, it names the gate.
func (p *progress) Observe(ev job.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.Kind {
	case job.Started:
		p.running++
		p.reserved += ev.Task.Request.Memory
		p.held = ""
	case job.Waiting:
		p.held = ev.Resource
	case job.Finished:
		if ev.Attempt > 0 { // it had a Started event
			p.running--
			p.reserved -= ev.Task.Request.Memory
		}
		if ev.Result.Failed() {
			p.failed++
		}
		p.done++
		_ = p.bar.Add64(1)
	default:
		return
	}
	desc := fmt.Sprintf("failed %d, running %d", p.failed, p.running)
	desc += p.memory()
	if p.done > 0 { // no rate before there is one to tell
		desc += fmt.Sprintf(", %.1f tasks/s", float64(p.done)/time.Since(p.start).Seconds())
	}
	switch p.held {
	case "":
	case job.ResourceCPUs, job.ResourceMemory:
		desc += ", waiting for " + p.held
	default:
		desc += ", held by --" + p.held
	}
	p.bar.Describe(desc)
}

// memory tells the memory the running tasks reserve and the memory free,
// when tasks reserve any or the capacity is known: ", memory 800.0 MiB
// reserved, 224.0 MiB free".
func (p *progress) memory() string {
	capacity := p.capacity()
	if p.reserved == 0 && capacity == 0 {
		return ""
	}
	s := ", memory " + job.FormatSize(p.reserved) + " reserved"
	if capacity > 0 {
		s += ", " + job.FormatSize(max(capacity-p.reserved, 0)) + " free"
	}
	return s
}

// around runs write, which writes to the terminal the line is drawn on,
// with the line out of its way: cleared before, drawn again after.
func (p *progress) around(write func() error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Clear()
	err := write()
	_ = p.bar.RenderBlank()
	return err
}

// recorded counts a task that an earlier run recorded as done.
func (p *progress) recorded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Add64(1)
}

// countTasks counts the tasks of a source that can be read twice (an inline
// argument or a regular file) in the background, and tells the bar. It stops
// when ctx is done.
func (p *progress) countTasks(ctx context.Context, open func() (io.ReadCloser, error), opts decode.Options) {
	go func() {
		r, err := open()
		if err != nil {
			return
		}
		defer r.Close()
		var n int64
		for range decode.New(r, opts).Stream(ctx) {
			n++
		}
		if ctx.Err() == nil {
			p.bar.ChangeMax64(n)
		}
	}()
}

// finish clears the progress line and leaves the run's totals in its
// place.
func (p *progress) finish(totals string) {
	_ = p.bar.Finish()
	_ = p.bar.Clear()
	fmt.Fprintln(p.out, "workerpool: "+totals)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
