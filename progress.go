package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/workerpool/workerpool/decode"
	"github.com/workerpool/workerpool/dispatch"
)

// progress draws a live progress line on a terminal: tasks done, failed and
// running, the rate, and, when the number of tasks is known, a bar and an
// estimate of the time left.
type progress struct {
	bar                   *progressbar.ProgressBar
	done, failed, running int64
}

// newProgress returns a progress display on w, or nil when w is not a
// terminal. The number of tasks is unknown until countTasks finds it.
func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(f),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("tasks"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSpinnerType(14),
	)
	return &progress{bar: bar}
}

// tap passes results through, counting them on the way, and closes its
// channel after in is closed.
func (p *progress) tap(in <-chan dispatch.Result) <-chan dispatch.Result {
	out := make(chan dispatch.Result)
	go func() {
		defer close(out)
		for r := range in {
			p.count(&r)
			out <- r
		}
	}()
	return out
}

func (p *progress) count(r *dispatch.Result) {
	switch {
	case r.Event == dispatch.EventStarted:
		p.running++
	case !r.IsResult():
		return
	default:
		if r.Attempts > 0 {
			p.running--
		}
		p.done++
		if r.Failed() {
			p.failed++
		}
		_ = p.bar.Add64(1)
	}
	p.bar.Describe(fmt.Sprintf("failed %d, running %d", p.failed, max(p.running, 0)))
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

// finish clears the progress line, leaving the terminal as it was.
func (p *progress) finish() {
	_ = p.bar.Finish()
	_ = p.bar.Clear()
}
