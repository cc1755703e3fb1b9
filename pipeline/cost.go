package pipeline

import (
	"fmt"
	"sync"
	"time"

	"github.com/workerpool/workerpool/job"
)

// cost sums what the tasks of a run cost, every attempt counted: the CPU
// time, and the largest peak memory with the task that had it.
type cost struct {
	mu     sync.Mutex
	cpu    time.Duration
	peak   int64 // KiB
	peakID string
}

// add counts what one attempt cost, where it is known.
func (c *cost) add(t *job.Task, r *job.Result) {
	u := r.Usage
	if u == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cpu += u.User + u.System
	if u.MaxRSS > c.peak {
		c.peak, c.peakID = u.MaxRSS, t.Identifier
	}
}

// attrs are the totals, for the log.
func (c *cost) attrs() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return []any{"cpu", c.cpu.Round(time.Millisecond), "task_max_rss_kb", c.peak, "task_max_rss_identifier", c.peakID}
}

// summary is the line the progress display leaves at the end of a run.
func (c *cost) summary(sum Summary, wall time.Duration) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := fmt.Sprintf("%d tasks, %d failed, in %s; CPU %s", sum.Results, sum.Failed,
		wall.Round(time.Millisecond), c.cpu.Round(time.Millisecond))
	if c.peakID != "" || c.peak > 0 {
		line += fmt.Sprintf("; peak memory %.1f MiB (task %q)", float64(c.peak)/1024, c.peakID)
	}
	return line
}
