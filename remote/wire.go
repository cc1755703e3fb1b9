package remote

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/internal/shorten"
	"github.com/workerpool/workerpool/job"
)

// Protocol is the version of the conversation between a pool and its
// agents. An agent tells its own in its hello; a pool refuses an agent
// that speaks another, so that no field of a request is ever ignored by an
// agent that does not know it. Any change to the lines below that an agent
// of the previous version would misread or ignore bumps it (the test
// TestWireFieldsNeedANewProtocol holds the fields of each version).
//
// Version 2 added heartbeats, strings sent as bytes, and usage clamped.
// Version 3 ends a reply's outputs with a line break, so that a transport
// that passes output on line by line (srun) passes on the whole reply at
// once, rather than holding its last bytes until the next line.
// Version 4 stages files: a task's files go to the host before it, in
// lines of their own, and those it returns come back before its reply.
// Version 5 adds the host's memory to the hello, for the tasks' "memory".
const Protocol = 5

// The conversation, over the agent's standard input and output:
//
//  1. The agent writes a hello line.
//  2. The pool writes requests, one JSON line each: a task to run under an
//     id of the pool's choosing, the cancellation of a running one, or a
//     heartbeat.
//  3. For each task, the agent writes a reply line, followed at once by the
//     task's stdout and then its stderr, raw, as many bytes of each as the
//     reply says, and a line break. Replies come in the order the tasks end; heartbeats come
//     between them.
//     Files staged for a task (--transferfile) go before it: a line that
//     puts a file, then for each chunk of its data (chunkSize bytes at
//     most) a line that gives its length, the bytes, raw, and a line
//     break; the lines of other tasks may come between them. The files a
//     task returns (--return) come the same way before its reply.
//  4. Each side writes a heartbeat every interval the pool names in its
//     own, and takes the other for lost when it has heard nothing for
//     livenessBeats intervals: the pool kills the connection and runs the
//     tasks elsewhere; the agent stops its tasks and exits.
//  5. The pool closes the agent's standard input when it is done. An agent
//     whose input ends stops every task still running and exits: whether
//     the pool finished or died, nothing it started is left behind.
//
// A line that is not what the protocol allows at that point (not JSON, a
// reply for an id that has none pending, a length that cannot be) is a
// protocol error: the pool ends that connection at once.

// hello is the first line an agent writes.
type hello struct {
	Agent    string `json:"workerpool_agent"` // the agent's version
	Protocol int    `json:"protocol"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPUs     int    `json:"cpus"`
	// Memory is the memory the host has available for tasks, in bytes,
	// as the agent found it when it started; 0 when it cannot tell.
	Memory int64 `json:"memory,omitempty"`
}

// helloMarker starts every hello: the pool looks for it in what a login
// prints before the agent starts.
const helloMarker = `{"workerpool_agent"`

// request is a line from the pool: a task to run, or, with Cancel, the
// cancellation of task ID, or, with Heartbeat (and ID 0), a heartbeat.
type request struct {
	ID       uint64     `json:"id"`
	Cancel   bool       `json:"cancel,omitempty"`
	Command  wireString `json:"command,omitempty"`
	Args     wireList   `json:"args,omitempty"`
	Env      wireEnv    `json:"env,omitempty"`
	Dir      wireString `json:"dir,omitempty"`
	Stdin    []byte     `json:"stdin,omitempty"` // base64 on the wire, so every byte arrives
	HasStdin bool       `json:"has_stdin,omitempty"`
	// Timeout is the task's time limit in nanoseconds, the pool's default
	// applied; zero means none.
	Timeout int64 `json:"timeout,omitempty"`
	// Limits are the task's, the pool's defaults applied.
	Limits *limits `json:"limits,omitempty"`
	// Heartbeat is the pool's heartbeat interval in nanoseconds: the agent
	// writes its own at that interval, and gives the pool up after
	// livenessBeats of them without a word from it.
	Heartbeat int64 `json:"heartbeat,omitempty"`
	// Put starts a file staged for task ID, which is sent after it: its
	// path in the task's directory on the host, with "/" between its
	// names, its mode's permission bits (Mode), and its size (Size), which
	// the bytes that come must make up. The lines that follow
	// for the same ID with Data hold its bytes, in order, up to the next
	// Put or the task: Data bytes of it (at most chunkSize), raw, follow
	// such a line, and a line break.
	Put  wireString `json:"put,omitempty"`
	Mode uint32     `json:"mode,omitempty"`
	Size int64      `json:"size,omitempty"`
	Data int64      `json:"data,omitempty"`
	// Staged runs the task in a directory of its own on the host, which
	// holds the files put for it. Once the task has ended, the files of
	// Return go back to the pool, and Cleanup removes them, the files put
	// and the directory.
	Staged  bool     `json:"staged,omitempty"`
	Return  wireList `json:"return,omitempty"`
	Cleanup bool     `json:"cleanup,omitempty"`
}

// chunkSize is the most bytes of a staged file one line carries, so that
// a file of any size travels in bounded memory, and the lines of other
// tasks (a cancel, a reply) are not held up behind it.
const chunkSize = 128 << 10

// limits are job.Limits on the wire, the CPU time in nanoseconds.
type limits struct {
	Memory int64 `json:"memory,omitempty"`
	CPU    int64 `json:"cpu,omitempty"`
	Files  int64 `json:"files,omitempty"`
	FSize  int64 `json:"fsize,omitempty"`
}

// usage is job.Usage on the wire, times in nanoseconds. Its figures are
// clamped as they are read: an agent cannot make a pool report a negative
// or overflowing cost.
type usage struct {
	User   clamped `json:"user"`
	System clamped `json:"system"`
	MaxRSS clamped `json:"max_rss_kb"`
}

func taskRequest(id uint64, t *job.Task) request {
	q := request{ID: id, Command: wireString(t.Command), Args: t.Args, Env: t.Env, Dir: wireString(t.Dir),
		Stdin: []byte(t.Stdin), HasStdin: t.HasStdin, Timeout: int64(t.Timeout)}
	if l := t.Limits; l.Set() {
		q.Limits = &limits{Memory: l.Memory, CPU: int64(l.CPU), Files: l.Files, FSize: l.FSize}
	}
	return q
}

// task is the task a request asks for.
func (q *request) task() *job.Task {
	t := &job.Task{Seq: int64(q.ID), Command: string(q.Command), Args: q.Args, Env: q.Env, Dir: string(q.Dir),
		Stdin: string(q.Stdin), HasStdin: q.HasStdin, Timeout: time.Duration(q.Timeout), HasTimeout: true}
	if l := q.Limits; l != nil {
		t.Limits = job.Limits{Memory: l.Memory, CPU: time.Duration(l.CPU), Files: l.Files, FSize: l.FSize}
	}
	return t
}

// reply is the line an agent writes when a task has ended; Stdout and
// Stderr bytes of raw output follow it. With Heartbeat, it is a heartbeat,
// and nothing follows.
type reply struct {
	ID        uint64     `json:"id"`
	ExitCode  int        `json:"exit_code"`
	Started   bool       `json:"started,omitempty"`
	Duration  clamped    `json:"duration,omitempty"` // nanoseconds
	Error     wireString `json:"error,omitempty"`
	Cancelled bool       `json:"cancelled,omitempty"` // Error is job.ErrCancelled
	Signal    string     `json:"signal,omitempty"`
	TimedOut  bool       `json:"timed_out,omitempty"`
	Truncated bool       `json:"truncated,omitempty"`
	Usage     *usage     `json:"usage,omitempty"`
	Limit     string     `json:"limit,omitempty"`
	Stdout    int64      `json:"stdout"`
	Stderr    int64      `json:"stderr"`
	Heartbeat bool       `json:"heartbeat,omitempty"`
	// File starts a file that task ID returns, which is still pending:
	// its path as the request's Return names it, its mode's permission
	// bits (Mode), and its size (Size), as a Put's. The lines that follow for the same ID with
	// Data hold its bytes, in order, up to the next File or the reply,
	// framed as a request's are.
	File wireString `json:"file,omitempty"`
	Mode uint32     `json:"mode,omitempty"`
	Size int64      `json:"size,omitempty"`
	Data int64      `json:"data,omitempty"`
}

func replyOf(id uint64, r *job.Result) reply {
	p := reply{ID: id, ExitCode: r.ExitCode, Started: r.Started, Duration: clamped(r.Duration),
		Signal: r.Signal, TimedOut: r.TimedOut, Truncated: r.Truncated, Limit: r.Limit,
		Stdout: r.Stdout.Len(), Stderr: r.Stderr.Len()}
	if u := r.Usage; u != nil {
		p.Usage = &usage{User: clamped(u.User), System: clamped(u.System), MaxRSS: clamped(u.MaxRSS)}
	}
	if r.Err != nil {
		p.Error = wireString(r.Err.Error())
		p.Cancelled = errors.Is(r.Err, job.ErrCancelled)
	}
	return p
}

// check returns a protocol error for a reply the pool cannot take: one
// whose outputs cannot be framed.
func (p *reply) check() error {
	if p.Stdout < 0 || p.Stderr < 0 {
		return fmt.Errorf("a reply gives its outputs %d and %d bytes", p.Stdout, p.Stderr)
	}
	return nil
}

// result fills r with what the reply says, but for the outputs.
func (p *reply) result(r *job.Result) {
	r.ExitCode, r.Started, r.Duration = p.ExitCode, p.Started, time.Duration(p.Duration)
	r.Signal, r.TimedOut, r.Truncated, r.Limit = p.Signal, p.TimedOut, p.Truncated, p.Limit
	if u := p.Usage; u != nil {
		r.Usage = &job.Usage{User: time.Duration(u.User), System: time.Duration(u.System), MaxRSS: int64(u.MaxRSS)}
	}
	switch {
	case p.Cancelled:
		r.Err = job.ErrCancelled
	case p.Error != "":
		r.Err = remoteError(p.Error)
	}
}

// wireString is a string that travels as its bytes: as a JSON string when
// it is valid UTF-8, and otherwise as {"base64": "..."}, since JSON would
// replace each invalid byte with U+FFFD, and a file name so changed names
// another file.
type wireString string

type wireBytes struct {
	Base64 []byte `json:"base64"`
}

func (s wireString) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(s)) {
		return json.Marshal(string(s))
	}
	return json.Marshal(wireBytes{[]byte(s)})
}

func (s *wireString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		var w wireBytes
		if err := json.Unmarshal(b, &w); err != nil {
			return err
		}
		*s = wireString(w.Base64)
		return nil
	}
	return json.Unmarshal(b, (*string)(s))
}

// wireList is a list of strings, each sent as a wireString.
type wireList []string

func (l wireList) MarshalJSON() ([]byte, error) {
	if !slices.ContainsFunc(l, func(s string) bool { return !utf8.ValidString(s) }) {
		return json.Marshal([]string(l)) // as it mostly is: no string to send as bytes
	}
	ws := make([]wireString, len(l))
	for i, s := range l {
		ws[i] = wireString(s)
	}
	return json.Marshal(ws)
}

func (l *wireList) UnmarshalJSON(b []byte) error {
	var ws []wireString
	if err := json.Unmarshal(b, &ws); err != nil {
		return err
	}
	*l = nil
	for _, w := range ws {
		*l = append(*l, string(w))
	}
	return nil
}

// wireEnv is an environment, sent as a list of "NAME=value" wireStrings so
// that names travel as bytes too.
type wireEnv map[string]string

func (e wireEnv) MarshalJSON() ([]byte, error) {
	l := make(wireList, 0, len(e))
	for k, v := range e {
		l = append(l, k+"="+v)
	}
	return l.MarshalJSON()
}

func (e *wireEnv) UnmarshalJSON(b []byte) error {
	var l wireList
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*e = nil
	for _, kv := range l {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("env entry %q is not NAME=value", shorten.Line(kv, 40))
		}
		if *e == nil {
			*e = wireEnv{}
		}
		(*e)[k] = v
	}
	return nil
}

// clamped is a count or a duration in nanoseconds, read from any JSON
// number and held within 0 and math.MaxInt64: 1e30 is the largest, -5 is
// 0, and a fraction is cut.
type clamped int64

func (c *clamped) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	if i, err := n.Int64(); err == nil {
		*c = clamped(max(i, 0))
		return nil
	}
	f, err := n.Float64()
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return err
	}
	switch {
	case f <= 0 || math.IsNaN(f):
		*c = 0
	case f >= math.MaxInt64:
		*c = math.MaxInt64
	default:
		*c = clamped(f)
	}
	return nil
}

// writeData writes a line that says data follows, then data, raw, and a
// line break.
func writeData(w io.Writer, line any, data []byte) error {
	if err := writeLine(w, line); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	_, err := w.Write([]byte{'\n'})
	return err
}

// readData copies the n bytes of data that follow a line from r to w,
// and reads the line break after them. An error is the stream's: a
// length that cannot be, or a stream that ends or breaks the framing; w's
// own errors are its own to record (see failWriter).
func readData(r *bufio.Reader, n int64, w io.Writer) error {
	if n < 0 || n > chunkSize {
		return fmt.Errorf("a chunk of %d bytes, past the most, %d", n, chunkSize)
	}
	if _, err := io.CopyN(w, r, n); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	switch end, err := r.ReadByte(); {
	case err == io.EOF:
		return io.ErrUnexpectedEOF
	case err != nil:
		return err
	case end != '\n':
		return fmt.Errorf("a chunk ends in %q, not a line break", end)
	}
	return nil
}

// failWriter writes to w until a write fails, and then drops the rest,
// keeping the first error: a chunk that cannot be kept is still read
// whole, so that the stream keeps its framing.
type failWriter struct {
	w   io.Writer
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if f.err == nil && f.w != nil {
		_, f.err = f.w.Write(p)
	}
	return len(p), nil
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
		return fmt.Errorf("unexpected line %q: %w", shorten.Line(line, 80), err)
	}
	return nil
}
