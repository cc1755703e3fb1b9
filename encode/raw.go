package encode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/workerpool/workerpool/job"
)

// Raw writes no JSON: each result is the task's stdout as it is, whole,
// as the task ends (GNU parallel's --group), and its captured stderr goes
// to Options.RawStderr, followed, when the task failed for a reason other
// than its own exit status, by a line that says why (see failure). With
// Tag, every line of the task's outputs starts with the task's identifier
// and a tab. An output file is appended to.
type Raw struct {
	Tag bool
}

func (Raw) String() string { return "raw" }
func (Raw) Traits() Traits { return Traits{Appends: true, Stderr: true} }

// result writes r's stdout to e.w as it is, then its stderr, and why it
// failed, to e.opts.RawStderr, each whole.
func (m Raw) result(e *Encoder, r *job.Result) error {
	var tag []byte
	if m.Tag {
		tag = append([]byte(r.Identifier), '\t')
	}
	if err := copyTagged(e.w, r.Stdout.Reader(), tag); err != nil {
		return err
	}
	why := failure(r)
	if e.opts.RawStderr == nil || r.Stderr.Len() == 0 && why == "" {
		return nil
	}
	if err := e.w.Flush(); err != nil { // stdout first, as the task wrote it
		return err
	}
	// The task's stderr is not the results': a failure to write it ends
	// nothing.
	_ = writeStderr(e.opts.RawStderr, r, tag, why)
	return nil
}

// writeStderr writes r's stderr to w, with tag before every line, then, if
// why is not empty, the line that says why r failed: after a line break
// when the stderr does not end with one, so that the line starts a line of
// its own, and in one write, so that it is not cut by another writer of w
// (the log of -v).
func writeStderr(w io.Writer, r *job.Result, tag []byte, why string) error {
	end := &lineEnd{w: w, at: true}
	bw := bufio.NewWriter(end)
	if err := copyTagged(bw, r.Stderr.Reader(), tag); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if why == "" {
		return nil
	}
	var line []byte
	if !end.at {
		line = append(line, '\n')
	}
	_, err := w.Write(appendFailure(line, r.Identifier, why))
	return err
}

// appendFailure appends to dst the line that says why the task id failed:
//
//	workerpool: task "a.txt": command not found: gzipp
//
// The identifier is quoted as Go quotes a string, and why's control
// characters escaped, so that the line is one line, and valid UTF-8 (a
// byte that is not stands for U+FFFD, see splitValid).
func appendFailure(dst []byte, id, why string) []byte {
	dst = append(dst, "workerpool: task "...)
	dst = strconv.AppendQuote(dst, validString(id))
	dst = append(dst, ": "...)
	dst = appendLine(dst, why)
	return append(dst, '\n')
}

// failure says why r failed, when the reason is not the task's own exit
// status, which the task itself explains (on its stderr) if it wishes: the
// pool's error (a command not found, or that could not start, a time
// limit, a host lost), or the signal that killed the task. A task stopped
// or skipped for the run's sake (an interrupt, --fail-fast) gets no
// reason: it is the run that stops. It is "" when there is nothing to say.
func failure(r *job.Result) string {
	switch {
	case errors.Is(r.Err, job.ErrCancelled), errors.Is(r.Err, job.ErrSkipped):
		return ""
	case r.Err != nil:
		return r.Err.Error()
	case r.Signal != "" && r.Limit != "":
		return fmt.Sprintf("killed by %s (the %s limit)", r.Signal, r.Limit)
	case r.Signal != "":
		return "killed by " + r.Signal
	}
	return ""
}

// lineEnd passes writes on to w, and tells whether the last byte written
// ended a line; at is true before any byte is.
type lineEnd struct {
	w  io.Writer
	at bool
}

func (l *lineEnd) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.at = p[n-1] == '\n'
	}
	return n, err
}

func (Raw) end(*Encoder) error { return nil }

// copyTagged copies r to w, with tag before every line.
func copyTagged(w *bufio.Writer, r io.Reader, tag []byte) error {
	if len(tag) == 0 {
		_, err := w.ReadFrom(r)
		return err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	start := true
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if start {
				if _, werr := w.Write(tag); werr != nil {
					return werr
				}
			}
			if _, werr := w.Write(chunk); werr != nil {
				return werr
			}
			start = bytes.HasSuffix(chunk, []byte{'\n'})
		}
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return nil
		default:
			return err
		}
	}
}

// Line writes one line of a running task's output (--line-buffer), id's,
// as it is, after id and a tab when the mode is Raw with Tag: to the
// results when it is the task's stdout, to Options.RawStderr when it is
// its stderr. A line of stdout is flushed at once; a failure to write one
// of stderr ends nothing, as for a result's.
func (e *Encoder) Line(id string, stderr bool, line []byte) error {
	w := e.w
	if stderr {
		if e.opts.RawStderr == nil {
			return nil
		}
		w = bufio.NewWriterSize(e.opts.RawStderr, len(id)+1+len(line))
	}
	if raw, ok := e.mode.(Raw); ok && raw.Tag {
		w.WriteString(validString(id))
		w.WriteByte('\t')
	}
	w.Write(line)
	err := w.Flush()
	if stderr {
		return nil
	}
	return err
}
