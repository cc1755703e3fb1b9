// Package report draws a run's results as one self-contained HTML page:
// where the time went, host by host and slot by slot, how the durations
// spread, which tasks were slow or failed and why, and what they cost.
//
// The page has no script and fetches nothing: its charts are inline SVG,
// its style inline CSS, so that it opens from a file, offline. Its size
// stays bounded: past a few thousand bars, neighbouring bars of one lane
// and one outcome are drawn as one, and the page says so.
//
// A Builder takes the results one by one, as a run writes them or as Read
// finds them in a results file, and writes the page at the end.
package report

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/job"
)

// Task is one result, as the report reads it: the fields of a result line
// it draws from (see the README's Results).
type Task struct {
	Seq        int64     `json:"seq"`
	Identifier string    `json:"identifier"`
	ExitCode   int       `json:"exit_code"`
	Error      string    `json:"error"`
	Signal     string    `json:"signal"`
	TimedOut   bool      `json:"timed_out"`
	Host       string    `json:"host"`
	Attempts   int       `json:"attempts"`
	DurationMS float64   `json:"duration_ms"`
	UserMS     float64   `json:"user_ms"`
	SysMS      float64   `json:"sys_ms"`
	MaxRSSKB   int64     `json:"max_rss_kb"`
	StartedAt  time.Time `json:"started_at"`
	EndedAt    time.Time `json:"ended_at"`
	// Stderr is the end of the task's stderr: kept for the slowest and the
	// failed tasks only.
	Stderr string `json:"stderr"`
}

// started reports whether the task has a place in time.
func (t *Task) started() bool { return !t.StartedAt.IsZero() && !t.EndedAt.Before(t.StartedAt) }

func (t *Task) failed() bool { return t.ExitCode != 0 }

// outcome names how the task ended, for the colour of its bar.
func (t *Task) outcome() string {
	switch {
	case t.ExitCode == 0:
		return "ok"
	case t.TimedOut:
		return "timeout"
	case t.Signal != "":
		return "signal"
	case t.ExitCode == job.ExitNeverStarted:
		return "notrun"
	}
	return "failed"
}

// Limits on what the page holds.
const (
	stderrTail = 2000 // bytes of stderr kept for a slow or failed task
	slowest    = 10   // the slowest tasks listed
	maxFailed  = 200  // the failed tasks listed
)

// Builder gathers the results of a run. The zero Builder is ready to use;
// it is not safe for use by more than one goroutine at once.
type Builder struct {
	tasks   []Task // every task, without its stderr
	slow    []Task // the slowest, with their stderr, slowest first
	failed  []Task // the first maxFailed failed, with their stderr
	nFailed int
}

// Add adds the result t. stderr returns the task's stderr, whole or its
// end, and is called only for a task the page lists: a failed one or one
// of the slowest.
func (b *Builder) Add(t Task, stderr func() string) {
	t.Stderr = ""
	b.tasks = append(b.tasks, t)
	var tail string
	if t.failed() || b.isSlow(&t) {
		tail = lastBytes(stderr(), stderrTail)
	}
	if t.failed() {
		b.nFailed++
		if len(b.failed) < maxFailed {
			listed := t
			listed.Stderr = tail
			b.failed = append(b.failed, listed)
		}
	}
	if b.isSlow(&t) {
		listed := t
		listed.Stderr = tail
		i, _ := slices.BinarySearchFunc(b.slow, listed, func(a, b Task) int { return cmp.Compare(b.DurationMS, a.DurationMS) })
		b.slow = slices.Insert(b.slow, i, listed)
		if len(b.slow) > slowest {
			b.slow = b.slow[:slowest]
		}
	}
}

// isSlow reports whether t is among the slowest so far.
func (b *Builder) isSlow(t *Task) bool {
	return t.started() && (len(b.slow) < slowest || t.DurationMS > b.slow[len(b.slow)-1].DurationMS)
}

// AddResult adds a result of a run, its stderr read only if it is listed.
func (b *Builder) AddResult(r *job.Result) {
	t := Task{Seq: r.Seq, Identifier: r.Identifier, ExitCode: r.ExitCode, Signal: r.Signal, TimedOut: r.TimedOut,
		Host: r.Host, Attempts: r.Attempts, DurationMS: ms(r.Duration)}
	if r.Err != nil {
		t.Error = r.Err.Error()
	}
	if r.Started {
		t.StartedAt, t.EndedAt = r.StartedAt, r.StartedAt.Add(r.Duration)
	}
	if r.Usage != nil {
		t.UserMS, t.SysMS, t.MaxRSSKB = ms(r.Usage.User), ms(r.Usage.System), r.Usage.MaxRSS
	}
	b.Add(t, func() string { return tailOf(r.Stderr, stderrTail) })
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Read adds the results of the NDJSON file r, as --ndjson writes them or
// as the journal of --outfile holds them: one result a line; the lines of
// --events, blank lines and lines that are not JSON objects are skipped.
// name names r in an error.
func (b *Builder) Read(r io.Reader, name string) error {
	lines := bufio.NewScanner(r)
	lines.Buffer(nil, 256<<20)
	n := 0
	for lines.Scan() {
		n++
		line := bytes.TrimSpace(lines.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var t struct {
			Task
			Event    string `json:"event"`
			Encoding string `json:"encoding"`
		}
		if err := json.Unmarshal(line, &t); err != nil {
			return fmt.Errorf("%s:%d: not a result: %w", name, n, err)
		}
		if t.Event != "" {
			continue
		}
		stderr := t.Stderr
		if t.Encoding != "" {
			stderr = "(" + t.Encoding + ")"
		}
		b.Add(t.Task, func() string { return stderr })
	}
	if err := lines.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// lastBytes returns the last n bytes of s, or fewer, so as to start on a
// character; bytes that are not UTF-8 become U+FFFD.
func lastBytes(s string, n int) string {
	if len(s) > n {
		s = s[len(s)-n:]
		for i := 0; i < utf8.UTFMax && i < len(s) && !utf8.RuneStart(s[0]); i++ {
			s = s[1:]
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// tailOf returns the last n bytes of o, or fewer (see lastBytes), read
// from the end of its spill, not through all of it.
func tailOf(o job.Output, n int) string {
	head, spill := o.Head(), o.Spill()
	if spill == nil {
		return lastBytes(string(head), n)
	}
	// A few bytes more, for lastBytes to find where a character starts.
	want := n + utf8.UTFMax
	size := spill.Size()
	from := max(size-int64(want), 0)
	buf := make([]byte, size-from)
	k, _ := spill.ReadAt(buf, from)
	buf = buf[:k]
	if rest := want - len(buf); rest > 0 {
		buf = append(slices.Clone(head[max(len(head)-rest, 0):]), buf...)
	}
	return lastBytes(string(buf), n)
}
