package remote

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/job"
)

// Protocol is the version of the conversation between a pool and its
// agents. An agent tells its own in its hello; a pool refuses an agent
// that speaks another.
const Protocol = 1

// The conversation, over the agent's standard input and output:
//
//  1. The agent writes a hello line.
//  2. The pool writes requests, one JSON line each: a task to run under an
//     id of the pool's choosing, or the cancellation of a running one.
//  3. For each task, the agent writes a reply line, followed at once by the
//     task's stdout and then its stderr, raw, as many bytes of each as the
//     reply says. Replies come in the order the tasks end.
//  4. The pool closes the agent's standard input when it is done. An agent
//     whose input ends stops every task still running and exits: whether
//     the pool finished or died, nothing it started is left behind.

// hello is the first line an agent writes.
type hello struct {
	Agent    string `json:"workerpool_agent"` // the agent's version
	Protocol int    `json:"protocol"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPUs     int    `json:"cpus"`
}

// request is a line from the pool: a task to run, or, with Cancel, the
// cancellation of task ID.
type request struct {
	ID       uint64            `json:"id"`
	Cancel   bool              `json:"cancel,omitempty"`
	Command  string            `json:"command,omitempty"`
	Args     []string          `json:"args,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Dir      string            `json:"dir,omitempty"`
	Stdin    []byte            `json:"stdin,omitempty"` // base64 on the wire, so every byte arrives
	HasStdin bool              `json:"has_stdin,omitempty"`
	// Timeout is the task's time limit in nanoseconds, the pool's default
	// applied; zero means none.
	Timeout int64 `json:"timeout,omitempty"`
	// Limits are the task's, the pool's defaults applied.
	Limits *limits `json:"limits,omitempty"`
}

// limits are job.Limits on the wire, the CPU time in nanoseconds.
type limits struct {
	Memory int64 `json:"memory,omitempty"`
	CPU    int64 `json:"cpu,omitempty"`
	Files  int64 `json:"files,omitempty"`
	FSize  int64 `json:"fsize,omitempty"`
}

// usage is job.Usage on the wire, times in nanoseconds.
type usage struct {
	User   int64 `json:"user"`
	System int64 `json:"system"`
	MaxRSS int64 `json:"max_rss_kb"`
}

func taskRequest(id uint64, t *job.Task, timeout time.Duration, defaults job.Limits) request {
	if t.HasTimeout {
		timeout = t.Timeout
	}
	q := request{ID: id, Command: t.Command, Args: t.Args, Env: t.Env, Dir: t.Dir,
		Stdin: []byte(t.Stdin), HasStdin: t.HasStdin, Timeout: int64(timeout)}
	if l := t.Limits.Or(defaults); l.Set() {
		q.Limits = &limits{Memory: l.Memory, CPU: int64(l.CPU), Files: l.Files, FSize: l.FSize}
	}
	return q
}

// task is the task a request asks for.
func (q *request) task() *job.Task {
	t := &job.Task{Seq: int64(q.ID), Command: q.Command, Args: q.Args, Env: q.Env, Dir: q.Dir,
		Stdin: string(q.Stdin), HasStdin: q.HasStdin, Timeout: time.Duration(q.Timeout), HasTimeout: true}
	if l := q.Limits; l != nil {
		t.Limits = job.Limits{Memory: l.Memory, CPU: time.Duration(l.CPU), Files: l.Files, FSize: l.FSize}
	}
	return t
}

// reply is the line an agent writes when a task has ended; Stdout and
// Stderr bytes of raw output follow it.
type reply struct {
	ID        uint64 `json:"id"`
	ExitCode  int    `json:"exit_code"`
	Started   bool   `json:"started,omitempty"`
	Duration  int64  `json:"duration,omitempty"` // nanoseconds
	Error     string `json:"error,omitempty"`
	Cancelled bool   `json:"cancelled,omitempty"` // Error is job.ErrCancelled
	Signal    string `json:"signal,omitempty"`
	TimedOut  bool   `json:"timed_out,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	Usage     *usage `json:"usage,omitempty"`
	Limit     string `json:"limit,omitempty"`
	Stdout    int64  `json:"stdout"`
	Stderr    int64  `json:"stderr"`
}

func replyOf(id uint64, r *job.Result) reply {
	p := reply{ID: id, ExitCode: r.ExitCode, Started: r.Started, Duration: int64(r.Duration),
		Signal: r.Signal, TimedOut: r.TimedOut, Truncated: r.Truncated, Limit: r.Limit,
		Stdout: r.Stdout.Len(), Stderr: r.Stderr.Len()}
	if u := r.Usage; u != nil {
		p.Usage = &usage{User: int64(u.User), System: int64(u.System), MaxRSS: u.MaxRSS}
	}
	if r.Err != nil {
		p.Error = r.Err.Error()
		p.Cancelled = errors.Is(r.Err, job.ErrCancelled)
	}
	return p
}

// result fills r with what the reply says, but for the outputs.
func (p *reply) result(r *job.Result) {
	r.ExitCode, r.Started, r.Duration = p.ExitCode, p.Started, time.Duration(p.Duration)
	r.Signal, r.TimedOut, r.Truncated, r.Limit = p.Signal, p.TimedOut, p.Truncated, p.Limit
	if u := p.Usage; u != nil {
		r.Usage = &job.Usage{User: time.Duration(u.User), System: time.Duration(u.System), MaxRSS: u.MaxRSS}
	}
	switch {
	case p.Cancelled:
		r.Err = job.ErrCancelled
	case p.Error != "":
		r.Err = remoteError(p.Error)
	}
}

// remoteError is an error reported by an agent, as text.
type remoteError string

func (e remoteError) Error() string { return string(e) }

// writeLine writes v as one JSON line.
func writeLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// readLine reads one JSON line into v. A line that is not the JSON
// expected is an error of the conversation, quoted (in part) so that a
// stray message on the other side, such as a shell's greeting, is seen.
func readLine(r *bufio.Reader, v any) error {
	line, err := r.ReadBytes('\n')
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("unexpected line %q: %w", clip(line, 80), err)
	}
	return nil
}

// clip returns at most n bytes of b, without a line end.
func clip(b []byte, n int) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
